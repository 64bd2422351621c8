//! Parse phase, arguments: the one parser of every macro's `key = value` list.
//!
//! Which keys each macro takes is the [`Spec`] table below; every key is parsed, checked
//! and typed here, once, for all of them (`main`, `name = ".."`, `caller = EXPR`,
//! `state = param`, `crate = path`, and the group's `mode`, `shield`, `timeout`,
//! `cancellation_timeout`). A repeated key is an error at the repeat; a key the macro
//! does not take, whether another macro takes it or none does, is the same "unknown key
//! .. expected one of" error everywhere, listing that macro's keys.

use proc_macro2::{Span, TokenStream, TokenTree};
use quote::{quote, ToTokens};
use syn::ext::IdentExt;
use syn::parse::{Lookahead1, ParseStream};
use syn::{Expr, Ident, Lit, LitStr, Path, Token};

use crate::duration::DurationArg;
use crate::errors::Errors;
use crate::mode::{self, Mode};

mod kw {
    syn::custom_keyword!(main);
    syn::custom_keyword!(name);
    syn::custom_keyword!(caller);
    syn::custom_keyword!(state);
    syn::custom_keyword!(mode);
    syn::custom_keyword!(shield);
    syn::custom_keyword!(timeout);
    syn::custom_keyword!(cancellation_timeout);
}

/// A key of some macro's arguments.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Key {
    Main,
    Name,
    Caller,
    State,
    Crate,
    Mode,
    Shield,
    Timeout,
    CancellationTimeout,
}

impl Key {
    /// The key as written.
    fn name(self) -> &'static str {
        match self {
            Key::Main => "main",
            Key::Name => "name",
            Key::Caller => "caller",
            Key::State => "state",
            Key::Crate => "crate",
            Key::Mode => "mode",
            Key::Shield => "shield",
            Key::Timeout => "timeout",
            Key::CancellationTimeout => "cancellation_timeout",
        }
    }

    /// The key with its value's grammar, as the errors list it.
    fn grammar(self) -> String {
        match self {
            Key::Main => "`main`".to_owned(),
            Key::Name => "`name = \"...\"`".to_owned(),
            Key::Caller => "`caller = EXPR`".to_owned(),
            Key::State => "`state = param`".to_owned(),
            Key::Crate => "`crate = path`".to_owned(),
            Key::Mode => format!("`mode = {} | name`", mode::number_range()),
            Key::Shield => "`shield = bool`".to_owned(),
            Key::Timeout => "`timeout = 50ms | Duration`".to_owned(),
            Key::CancellationTimeout => "`cancellation_timeout = 2s | Duration`".to_owned(),
        }
    }

    fn peek(self, lookahead: &Lookahead1<'_>) -> bool {
        match self {
            Key::Main => lookahead.peek(kw::main),
            Key::Name => lookahead.peek(kw::name),
            Key::Caller => lookahead.peek(kw::caller),
            Key::State => lookahead.peek(kw::state),
            Key::Crate => lookahead.peek(Token![crate]),
            Key::Mode => lookahead.peek(kw::mode),
            Key::Shield => lookahead.peek(kw::shield),
            Key::Timeout => lookahead.peek(kw::timeout),
            Key::CancellationTimeout => lookahead.peek(kw::cancellation_timeout),
        }
    }
}

/// What follows a macro's keys.
#[derive(Clone, Copy)]
enum End {
    /// Nothing: an attribute's arguments.
    Input,
    /// The group's body: `{ ... }`, `< ... >` or `|pg| ...`.
    Body,
}

impl End {
    fn reached(self, input: ParseStream<'_>) -> bool {
        match self {
            End::Input => false,
            End::Body => at_body(input),
        }
    }

    /// Skip the rest of a bad key: up to the next `,` (or, before a body, the next `{`).
    fn skip(self, input: ParseStream<'_>) -> syn::Result<()> {
        let stop = |input: ParseStream<'_>| match self {
            End::Input => input.peek(Token![,]),
            End::Body => input.peek(Token![,]) || input.peek(syn::token::Brace),
        };
        while !input.is_empty() && !stop(input) {
            input.parse::<TokenTree>()?;
        }
        Ok(())
    }
}

/// Whether the next token starts `pending_group!`'s body.
pub(crate) fn at_body(input: ParseStream<'_>) -> bool {
    input.peek(syn::token::Brace) || input.peek(Token![|]) || input.peek(Token![<])
}

/// One macro's grammar.
pub(crate) struct Spec {
    /// The macro, as its errors name it.
    pub(crate) what: &'static str,
    /// The keys it takes, in the order its errors list them.
    keys: &'static [Key],
    end: End,
    /// The caller's name in the example of `name = ".."`'s errors (for the macros that
    /// take `name`).
    example_name: &'static str,
}

pub(crate) const ON_THREAD: Spec = Spec {
    what: "#[on_thread]",
    keys: &[Key::Main, Key::Name, Key::Caller, Key::State, Key::Crate],
    end: End::Input,
    example_name: "db",
};

pub(crate) const QUEUED: Spec = Spec {
    what: "#[queued]",
    keys: &[Key::Caller, Key::Crate],
    end: End::Input,
    example_name: "",
};

pub(crate) const MAIN: Spec = Spec {
    what: "#[caller::main]",
    keys: &[Key::Name, Key::Crate],
    end: End::Input,
    example_name: "app",
};

pub(crate) const TEST: Spec = Spec {
    what: "#[caller::test]",
    ..MAIN
};

pub(crate) const GROUP: Spec = Spec {
    what: "pending_group!",
    keys: &[
        Key::Mode,
        Key::Shield,
        Key::Timeout,
        Key::CancellationTimeout,
        Key::Crate,
    ],
    end: End::Body,
    example_name: "",
};

impl Spec {
    /// The keys it takes, as its errors list them.
    fn keys_shown(&self) -> String {
        let keys: Vec<String> = self.keys.iter().map(|k| k.grammar()).collect();
        let keys = keys.join(", ");
        match self.end {
            End::Input => keys,
            End::Body => format!(
                "{keys}, then the body (`{{ ... }}`, `< ... >`, or `|pg| {{ ... }}` to name \
                 the group)"
            ),
        }
    }

    /// The error for a token that is not one of its keys: "unknown key `x`" when it is a
    /// word, otherwise the lookahead's own "expected one of" error.
    fn unknown_key(&self, input: ParseStream<'_>, lookahead: Lookahead1<'_>) -> syn::Error {
        let (what, keys) = (self.what, self.keys_shown());
        if let Ok(ident) = input.fork().call(Ident::parse_any) {
            return syn::Error::new(
                ident.span(),
                format!("unknown key `{ident}` for {what}; expected one of: {keys}"),
            );
        }
        let err = lookahead.error();
        syn::Error::new(err.span(), format!("{err}; the keys of {what} are: {keys}"))
    }
}

/// One key's value, and where the key was written: set at most once.
pub(crate) struct Slot<T>(Option<(Span, T)>);

impl<T> Default for Slot<T> {
    fn default() -> Self {
        Slot(None)
    }
}

impl<T> Slot<T> {
    /// Record the value given at `span`; a second one is an error at the repeat.
    fn set(&mut self, key: Key, span: Span, value: T) -> syn::Result<()> {
        if self.0.is_some() {
            return Err(syn::Error::new(
                span,
                format!("duplicate `{}` key: give each key once", key.name()),
            ));
        }
        self.0 = Some((span, value));
        Ok(())
    }

    pub(crate) fn span(&self) -> Option<Span> {
        self.0.as_ref().map(|(s, _)| *s)
    }

    pub(crate) fn take(self) -> Option<T> {
        self.0.map(|(_, v)| v)
    }
}

/// The arguments as written: each key's value, checked and typed.
#[derive(Default)]
pub(crate) struct Args {
    pub(crate) main: Slot<()>,
    pub(crate) name: Slot<LitStr>,
    pub(crate) caller: Slot<Expr>,
    /// The parameter that receives the caller's thread-confined state.
    pub(crate) state: Slot<Ident>,
    pub(crate) krate: Slot<Path>,
    pub(crate) mode: Slot<Mode>,
    pub(crate) shield: Slot<Expr>,
    pub(crate) timeout: Slot<DurationArg>,
    pub(crate) cancellation_timeout: Slot<DurationArg>,
    /// Every key given, in order, and where it was written.
    pub(crate) order: Vec<(Key, Span)>,
}

impl Args {
    /// An attribute's arguments. With a mistake, every one is reported and the macro goes
    /// on with no arguments, so that the item still expands and nothing else is reported.
    pub(crate) fn parse_attr(spec: &Spec, args: TokenStream, errors: &mut Errors) -> Args {
        let parse = |input: ParseStream<'_>| Args::parse(spec, input);
        match syn::parse::Parser::parse2(parse, args) {
            Ok((args, found)) if found.is_empty() => args,
            Ok((_, found)) => {
                errors.append(found);
                Args::default()
            }
            Err(e) => {
                errors.push(e);
                Args::default()
            }
        }
    }

    /// ```text
    /// list := (arg ("," arg)* ","?)?        then, in pending_group!, the body
    /// arg  := "main" | key "=" value        (the keys of `spec`, see `parse_key`)
    /// ```
    /// A bad `arg` is recorded and skipped up to the next `,`, so that every mistake is
    /// reported, each once, and the good keys are kept.
    pub(crate) fn parse(spec: &Spec, input: ParseStream<'_>) -> syn::Result<(Args, Errors)> {
        let mut args = Args::default();
        let mut errors = Errors::default();
        while !input.is_empty() && !spec.end.reached(input) {
            if let Err(e) = args.parse_key(spec, input) {
                errors.push(e);
                spec.end.skip(input)?;
            }
            if input.peek(Token![,]) {
                input.parse::<Token![,]>()?;
            } else if !input.is_empty() && !spec.end.reached(input) {
                errors.push(input.error("expected `,` after the key's value"));
                spec.end.skip(input)?;
                if input.peek(Token![,]) {
                    input.parse::<Token![,]>()?;
                }
            }
        }
        Ok((args, errors))
    }

    /// ```text
    /// arg := "main"
    ///      | "name" "=" LitStr              (non-empty, no NUL: it names a thread)
    ///      | "caller" "=" Expr              (a Caller, &Caller, Option or Result of one)
    ///      | "state" "=" Ident              (a parameter of the function)
    ///      | "crate" "=" (Path | LitStr)
    ///      | "mode" "=" (INT | name | Expr) (see mode.rs)
    ///      | "shield" "=" Expr              (a bool; a literal must be `true` or `false`)
    ///      | ("timeout" | "cancellation_timeout") "=" (duration literal | Expr)
    /// ```
    fn parse_key(&mut self, spec: &Spec, input: ParseStream<'_>) -> syn::Result<()> {
        let lookahead = input.lookahead1();
        let Some(&key) = spec.keys.iter().find(|k| k.peek(&lookahead)) else {
            return Err(spec.unknown_key(input, lookahead));
        };
        let span = input.call(Ident::parse_any)?.span();
        if key != Key::Main {
            input.parse::<Token![=]>()?;
        }
        match key {
            Key::Main => self.main.set(key, span, ()),
            Key::Name => self.name.set(key, span, name_value(spec, input)?),
            Key::Caller => self.caller.set(key, span, input.parse()?),
            Key::State => self.state.set(key, span, state_value(input)?),
            Key::Crate => self.krate.set(key, span, crate_value(input)?),
            Key::Mode => self.mode.set(key, span, Mode::parse_value(input)?),
            Key::Shield => self.shield.set(key, span, shield_value(input)?),
            Key::Timeout => {
                let value = DurationArg::parse_value(input, key.name())?;
                self.timeout.set(key, span, value)
            }
            Key::CancellationTimeout => {
                let value = DurationArg::parse_value(input, key.name())?;
                self.cancellation_timeout.set(key, span, value)
            }
        }?;
        self.order.push((key, span));
        Ok(())
    }
}

/// A caller's name: the runtime takes no empty name, nor one with a NUL byte (it names the
/// caller's thread too), so neither compiles.
fn name_value(spec: &Spec, input: ParseStream<'_>) -> syn::Result<LitStr> {
    if !input.peek(LitStr) {
        let example = spec.example_name;
        return Err(input.error(format!(
            "`name` takes a string literal: `name = \"{example}\"`"
        )));
    }
    let lit: LitStr = input.parse()?;
    let value = lit.value();
    let wrong = if value.is_empty() {
        "be empty"
    } else if value.contains('\0') {
        "contain a NUL byte"
    } else {
        return Ok(lit);
    };
    Err(syn::Error::new(
        lit.span(),
        format!(
            "a caller's name cannot {wrong}: it names the caller's thread too \
             (`name = \"{}\"`)",
            spec.example_name
        ),
    ))
}

fn state_value(input: ParseStream<'_>) -> syn::Result<Ident> {
    if !input.peek(Ident) {
        return Err(input.error(
            "`state` names the parameter that receives the caller's state: \
             `state = db` for `db: &mut Db`",
        ));
    }
    input.parse()
}

/// `crate = path`, or `crate = "path"` as tokio also accepts.
fn crate_value(input: ParseStream<'_>) -> syn::Result<Path> {
    if input.peek(LitStr) {
        input.parse::<LitStr>()?.parse::<Path>()
    } else {
        Path::parse_mod_style(input)
    }
}

fn shield_value(input: ParseStream<'_>) -> syn::Result<Expr> {
    let expr = ungroup(input.parse()?);
    if let Expr::Lit(l) = &expr {
        if !matches!(l.lit, Lit::Bool(_)) {
            return Err(syn::Error::new(
                l.lit.span(),
                "`shield` is `true` or `false` (or a `bool` expression)",
            ));
        }
    }
    Ok(expr)
}

/// A value passed on by a `macro_rules!` `$x:expr` arrives wrapped in an invisible group:
/// look inside, so that `mode = $m` checks the literal as if it were written here.
pub(crate) fn ungroup(expr: Expr) -> Expr {
    match expr {
        Expr::Group(g) => ungroup(*g.expr),
        other => other,
    }
}

/// The path generated code names the runtime crate by: `::caller`, or the `crate = path`
/// override (for a renamed or re-exported dependency, as in tokio).
pub(crate) fn crate_path(krate: Option<Path>) -> TokenStream {
    match krate {
        Some(path) => path.into_token_stream(),
        None => quote!(::caller),
    }
}
