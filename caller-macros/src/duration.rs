//! Parse phase, duration values (`timeout = 50ms`): a literal with a unit suffix, checked
//! and converted once, when parsed, into a typed [`DurationLit`] (its text is never read
//! again), or any `Duration` expression; expansion writes either as a `Duration`.

use proc_macro2::{Literal, Span, TokenStream};
use quote::{quote_spanned, ToTokens};
use syn::parse::ParseStream;
use syn::{Expr, Lit, UnOp};

use crate::args::ungroup;

/// The unit suffixes a duration literal accepts, as the error lists them.
pub(crate) const UNITS: &str = "`ns`, `us`, `ms`, `s`, `m`, `min` (no suffix: seconds)";

/// A duration key's value, checked.
pub(crate) enum DurationArg {
    /// A literal (`50ms`, `2.5`, `1min`), converted at compile time.
    Lit(DurationLit),
    /// Any other expression; it must be a `core::time::Duration`.
    Expr(Expr),
}

/// A duration literal's value, exact to the nanosecond, and where it was written.
pub(crate) struct DurationLit {
    pub(crate) value: std::time::Duration,
    pub(crate) span: Span,
}

impl DurationArg {
    /// The value of the key `key` (for the error messages).
    ///
    /// ```text
    /// value := INT suffix? | FLOAT suffix? | Expr
    /// suffix := "ns" | "us" | "ms" | "s" | "m" | "min"
    /// ```
    pub(crate) fn parse_value(input: ParseStream<'_>, key: &str) -> syn::Result<DurationArg> {
        let expr = ungroup(input.parse()?);
        match expr {
            Expr::Lit(l) => match &l.lit {
                Lit::Int(i) => literal(key, i.base10_digits(), i.suffix(), i.span()),
                Lit::Float(f) => literal(key, f.base10_digits(), f.suffix(), f.span()),
                other => Err(syn::Error::new(
                    other.span(),
                    format!(
                        "`{key}` is a duration: a number with a unit (`{key} = 50ms`, \
                         `{key} = 2.5s`) or a `Duration` expression; the units are {UNITS}"
                    ),
                )),
            },
            Expr::Unary(u) if matches!(u.op, UnOp::Neg(_)) => Err(syn::Error::new_spanned(
                u,
                format!("`{key}` is a duration: a negative one has no meaning"),
            )),
            other => Ok(DurationArg::Expr(other)),
        }
    }
}

/// A `Duration` expression of the value: `::core::time::Duration::new(secs, nanos)` for a
/// literal, the expression as written otherwise.
impl ToTokens for DurationArg {
    fn to_tokens(&self, tokens: &mut TokenStream) {
        match self {
            DurationArg::Lit(DurationLit { value, span }) => {
                let secs = Literal::u64_unsuffixed(value.as_secs());
                let nanos = Literal::u32_unsuffixed(value.subsec_nanos());
                // Resolved at the call site, as every path the macros write; shown at the literal.
                let at = Span::call_site().located_at(*span);
                tokens.extend(quote_spanned!(at=> ::core::time::Duration::new(#secs, #nanos)));
            }
            DurationArg::Expr(e) => e.to_tokens(tokens),
        }
    }
}

/// Nanoseconds in one of `suffix`, or `None` for a suffix that is not a unit.
fn unit_nanos(suffix: &str) -> Option<u128> {
    Some(match suffix {
        "ns" => 1,
        "us" => 1_000,
        "ms" => 1_000_000,
        "" | "s" => 1_000_000_000,
        "m" | "min" => 60_000_000_000,
        _ => return None,
    })
}

/// The literal `digits` (base 10, as syn gives them: `50`, `2.5`, `1e3`, `2.5e-3`) in
/// units of `suffix`, exactly, to the nanosecond (finer digits are dropped).
fn literal(key: &str, digits: &str, suffix: &str, span: Span) -> syn::Result<DurationArg> {
    let Some(unit) = unit_nanos(suffix) else {
        return Err(syn::Error::new(
            span,
            format!("unknown unit `{suffix}` for `{key}`; expected one of: {UNITS}"),
        ));
    };
    let too_large = || {
        syn::Error::new(
            span,
            format!("`{key}` is too large: a `Duration` holds at most u64::MAX seconds"),
        )
    };
    let nanos = nanos_of(digits, unit).ok_or_else(too_large)?;
    let secs = u64::try_from(nanos / 1_000_000_000).map_err(|_| too_large())?;
    let sub = (nanos % 1_000_000_000) as u32;
    let value = std::time::Duration::new(secs, sub);
    Ok(DurationArg::Lit(DurationLit { value, span }))
}

/// `digits × unit`, in nanoseconds, with decimal arithmetic (no float rounding), or
/// `None` if it overflows.
fn nanos_of(digits: &str, unit: u128) -> Option<u128> {
    let (mantissa, exp) = match digits.split_once(['e', 'E']) {
        Some((m, e)) => (m, e.parse::<i32>().ok()?),
        None => (digits, 0),
    };
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let mut value: u128 = 0;
    for d in int.bytes().chain(frac.bytes()).filter(|b| *b != b'_') {
        value = value.checked_mul(10)?.checked_add(u128::from(d - b'0'))?;
    }
    value = value.checked_mul(unit)?;
    let scale = exp.checked_sub(i32::try_from(frac.len()).ok()?)?;
    if scale >= 0 {
        value.checked_mul(10u128.checked_pow(scale.unsigned_abs())?)
    } else {
        // Below a nanosecond: dropped. A divisor too large to hold means zero.
        Some(
            10u128
                .checked_pow(scale.unsigned_abs())
                .map_or(0, |div| value / div),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn parse(src: &str) -> syn::Result<Duration> {
        syn::parse::Parser::parse_str(
            |input: ParseStream<'_>| DurationArg::parse_value(input, "timeout"),
            src,
        )
        .map(|d| match d {
            DurationArg::Lit(d) => d.value,
            DurationArg::Expr(_) => panic!("{src} is a literal"),
        })
    }

    #[test]
    fn every_unit_scales_its_literal() {
        for (src, want) in [
            ("50ms", Duration::from_millis(50)),
            ("50", Duration::from_secs(50)),
            ("50s", Duration::from_secs(50)),
            ("7ns", Duration::from_nanos(7)),
            ("7us", Duration::from_micros(7)),
            ("2m", Duration::from_secs(120)),
            ("2min", Duration::from_secs(120)),
            ("2.5", Duration::from_millis(2500)),
            ("2.5s", Duration::from_millis(2500)),
            ("1.5ms", Duration::from_micros(1500)),
            ("0.1", Duration::from_millis(100)),
            ("1e3ms", Duration::from_secs(1)),
            ("2.5e-3s", Duration::from_micros(2500)),
            ("1_000ms", Duration::from_secs(1)),
            ("0.5min", Duration::from_secs(30)),
            ("1.5ns", Duration::from_nanos(1)),
            ("0", Duration::ZERO),
        ] {
            assert_eq!(parse(src).expect(src), want, "{src}");
        }
    }

    #[test]
    fn other_suffixes_and_overflow_are_errors() {
        for src in ["5u64", "5h", "5.0f64", "5sec"] {
            let err = parse(src).expect_err(src).to_string();
            assert!(
                err.contains("unknown unit") && err.contains("`ms`"),
                "{src}: {err}"
            );
        }
        for src in ["18446744073709551616", "1e30", "400000000000000000min"] {
            let err = parse(src).expect_err(src).to_string();
            assert!(err.contains("too large"), "{src}: {err}");
        }
        assert!(parse("-5ms").is_err());
    }
}
