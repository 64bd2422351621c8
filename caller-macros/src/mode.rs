//! Parse phase, `mode = ..`: the group modes `pending_group!` knows by name and by
//! async-kernel's number ([`MODES`]), and the parser of the key's value into a [`Mode`].
//!
//! [`MODES`] mirrors the runtime's `GroupMode`: one row a variant, with its number; the
//! name the macro takes is the variant's, in snake case, and every error message lists the
//! table. The unit test below holds the table against the runtime's enum (a
//! dev-dependency), and `tests/macros_group_modes.rs` expands every name and number: a
//! variant added, renamed or renumbered on one side only fails them.

use syn::parse::ParseStream;
use syn::{Expr, Lit, UnOp};

use crate::args::ungroup;

/// One variant of the runtime's `GroupMode`.
pub(crate) struct ModeRow {
    /// The variant's name in `caller::GroupMode`.
    pub(crate) variant: &'static str,
    /// async-kernel's number for it (`GroupMode::from_number`), if it has one.
    pub(crate) number: Option<u8>,
}

/// Every variant of `caller::GroupMode`, numbered ones in their order.
pub(crate) const MODES: [ModeRow; 5] = [
    ModeRow {
        variant: "IgnoreCancelled",
        number: Some(0),
    },
    ModeRow {
        variant: "CancelAndRaise",
        number: Some(1),
    },
    ModeRow {
        variant: "CancelQuietly",
        number: Some(2),
    },
    ModeRow {
        variant: "Raise",
        number: Some(3),
    },
    ModeRow {
        variant: "Supervisor",
        number: None,
    },
];

impl ModeRow {
    /// The name `mode = ..` takes: the variant's in snake case (`cancel_and_raise`).
    pub(crate) fn name(&self) -> String {
        let mut name = String::new();
        for (i, c) in self.variant.chars().enumerate() {
            if c.is_ascii_uppercase() && i > 0 {
                name.push('_');
            }
            name.push(c.to_ascii_lowercase());
        }
        name
    }
}

/// The group's mode as given: a row of [`MODES`] (by number or name), or any expression
/// of type `GroupMode`.
pub(crate) enum Mode {
    Known(&'static ModeRow),
    Expr(Expr),
}

fn numbers() -> impl Iterator<Item = u8> {
    MODES.iter().filter_map(|row| row.number)
}

/// The numbers as a range, for the list of keys: `0..=3`.
pub(crate) fn number_range() -> String {
    let min = numbers().min().unwrap_or(0);
    let max = numbers().max().unwrap_or(0);
    format!("{min}..={max}")
}

/// The numbers in words: `0, 1, 2 or 3`.
fn numbers_in_words() -> String {
    let all: Vec<String> = numbers().map(|n| n.to_string()).collect();
    match all.split_last() {
        Some((last, [])) => last.clone(),
        Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
        None => String::new(),
    }
}

/// Every value the key takes, as the errors list them: `0, 1, 2, 3, `ignore_cancelled`, ..`.
fn expected() -> String {
    let numbers = numbers().map(|n| n.to_string());
    let names = MODES.iter().map(|row| format!("`{}`", row.name()));
    numbers.chain(names).collect::<Vec<_>>().join(", ")
}

impl Mode {
    /// The value of `mode = ..`.
    ///
    /// ```text
    /// value := INT | name | Expr        (INT and name from MODES; Expr: a GroupMode)
    /// ```
    pub(crate) fn parse_value(input: ParseStream<'_>) -> syn::Result<Mode> {
        let out_of_range = || {
            format!(
                "`mode` is {} (or a name); expected one of: {}",
                numbers_in_words(),
                expected()
            )
        };
        let expr = ungroup(input.parse()?);
        match &expr {
            Expr::Lit(l) => match &l.lit {
                Lit::Int(i) => {
                    let row = i
                        .base10_parse::<u8>()
                        .ok()
                        .and_then(|n| MODES.iter().find(|row| row.number == Some(n)));
                    row.map(Mode::Known)
                        .ok_or_else(|| syn::Error::new(i.span(), out_of_range()))
                }
                other => Err(syn::Error::new(
                    other.span(),
                    format!(
                        "`mode` takes a number or a name; expected one of: {}",
                        expected()
                    ),
                )),
            },
            Expr::Unary(u) if matches!(u.op, UnOp::Neg(_)) => {
                Err(syn::Error::new_spanned(u, out_of_range()))
            }
            Expr::Path(p) if p.qself.is_none() && p.path.get_ident().is_some() => {
                let ident = p.path.get_ident().expect("checked");
                let name = ident.to_string();
                match MODES.iter().find(|row| row.name() == name) {
                    Some(row) => Ok(Mode::Known(row)),
                    None => Err(syn::Error::new(
                        ident.span(),
                        format!("unknown mode `{ident}`; expected one of: {}", expected()),
                    )),
                }
            }
            _ => Ok(Mode::Expr(expr)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use caller::GroupMode;

    /// Every variant of the runtime's `GroupMode`, in its order. The match has no `_` arm:
    /// a variant added to the runtime stops this from compiling until it is listed here
    /// (and, by the tests below, in [`MODES`]).
    fn runtime_modes() -> Vec<GroupMode> {
        let next = |mode: Option<GroupMode>| match mode {
            None => Some(GroupMode::IgnoreCancelled),
            Some(GroupMode::IgnoreCancelled) => Some(GroupMode::CancelAndRaise),
            Some(GroupMode::CancelAndRaise) => Some(GroupMode::CancelQuietly),
            Some(GroupMode::CancelQuietly) => Some(GroupMode::Raise),
            Some(GroupMode::Raise) => Some(GroupMode::Supervisor),
            Some(GroupMode::Supervisor) => None,
        };
        std::iter::successors(next(None), |m| next(Some(*m))).collect()
    }

    /// The runtime's number for `mode`, read back through `GroupMode::from_number`.
    fn runtime_number(mode: GroupMode) -> Option<u8> {
        (0..=u8::MAX).find(|&n| GroupMode::from_number(n) == Some(mode))
    }

    #[test]
    fn the_table_has_every_runtime_mode_with_its_number() {
        for mode in runtime_modes() {
            let variant = format!("{mode:?}");
            let row = MODES.iter().find(|row| row.variant == variant);
            let row = row.unwrap_or_else(|| panic!("GroupMode::{variant} has no row in MODES"));
            assert_eq!(
                row.number,
                runtime_number(mode),
                "GroupMode::{variant}: the macro's number is not the runtime's"
            );
        }
    }

    #[test]
    fn every_row_is_a_runtime_mode() {
        let runtime: Vec<String> = runtime_modes().iter().map(|m| format!("{m:?}")).collect();
        for row in &MODES {
            assert!(
                runtime.contains(&row.variant.to_owned()),
                "MODES names `{}`, which caller::GroupMode does not have",
                row.variant
            );
        }
        assert_eq!(MODES.len(), runtime.len(), "one row a variant, no repeats");
        for n in 0..=u8::MAX {
            let row = MODES.iter().find(|row| row.number == Some(n));
            assert_eq!(
                row.map(|row| row.variant.to_owned()),
                GroupMode::from_number(n).map(|m| format!("{m:?}")),
                "mode number {n}"
            );
        }
    }

    #[test]
    fn names_and_messages_come_from_the_table() {
        let names: Vec<String> = MODES.iter().map(ModeRow::name).collect();
        assert_eq!(
            names,
            [
                "ignore_cancelled",
                "cancel_and_raise",
                "cancel_quietly",
                "raise",
                "supervisor"
            ]
        );
        assert_eq!(number_range(), "0..=3");
        assert_eq!(numbers_in_words(), "0, 1, 2 or 3");
    }
}
