//! `pending_group!(mode = 1, shield = true, timeout = 2.5, { body })`: run `body` inside a
//! `PendingGroup` and evaluate to the group's result.
//!
//! Parse ([`Input`]) → validate (each value checked as it is parsed, see [`Mode`] and
//! [`Timeout`]) → expand ([`expand`], reading only the final [`Config`]).

use proc_macro2::{Literal, Span, TokenStream};
use quote::{quote, quote_spanned};
use syn::parse::{Parse, ParseStream};
use syn::{Block, Expr, Lit, Path, Token, UnOp};

use crate::config::{self, kw, Errors, Slot};

const WHAT: &str = "pending_group!";
const KEYS: &str = "`mode = 0..=3 | name`, `shield = bool`, `timeout = seconds | Duration`, \
                    `cancellation_timeout = seconds | Duration`, `crate = path`, then the body \
                    `{ ... }`";
const MODES: &str = "0, 1, 2, 3, `ignore_cancelled`, `cancel_and_raise`, `cancel_quietly`, \
                     `raise`, `supervisor`";

/// The group's mode: the seed's number, one of our names, or any `GroupMode` expression.
enum Mode {
    Variant(&'static str),
    Expr(Expr),
}

/// The numbered modes, in the seed's order.
const NUMBERED: [&str; 4] = [
    "IgnoreCancelled",
    "CancelAndRaise",
    "CancelQuietly",
    "Raise",
];

impl Mode {
    fn parse_value(input: ParseStream<'_>) -> syn::Result<Mode> {
        let expr = ungroup(input.parse()?);
        match &expr {
            Expr::Lit(l) => match &l.lit {
                Lit::Int(i) => match i.base10_parse::<u8>() {
                    Ok(n) if (n as usize) < NUMBERED.len() => {
                        Ok(Mode::Variant(NUMBERED[n as usize]))
                    }
                    _ => Err(syn::Error::new(
                        i.span(),
                        format!("`mode` is 0, 1, 2 or 3 (or a name); expected one of: {MODES}"),
                    )),
                },
                other => Err(syn::Error::new(
                    other.span(),
                    format!("`mode` takes a number or a name; expected one of: {MODES}"),
                )),
            },
            Expr::Unary(u) if matches!(u.op, UnOp::Neg(_)) => Err(syn::Error::new_spanned(
                u,
                format!("`mode` is 0, 1, 2 or 3 (or a name); expected one of: {MODES}"),
            )),
            Expr::Path(p) if p.qself.is_none() && p.path.get_ident().is_some() => {
                let ident = p.path.get_ident().expect("checked");
                let variant = match ident.to_string().as_str() {
                    "ignore_cancelled" => "IgnoreCancelled",
                    "cancel_and_raise" => "CancelAndRaise",
                    "cancel_quietly" => "CancelQuietly",
                    "raise" => "Raise",
                    "supervisor" => "Supervisor",
                    _ => {
                        return Err(syn::Error::new(
                            ident.span(),
                            format!("unknown mode `{ident}`; expected one of: {MODES}"),
                        ))
                    }
                };
                Ok(Mode::Variant(variant))
            }
            _ => Ok(Mode::Expr(expr)),
        }
    }
}

/// A value passed on by a `macro_rules!` `$x:expr` arrives wrapped in an invisible group:
/// look inside, so that `mode = $m` checks the literal as if it were written here.
fn ungroup(expr: Expr) -> Expr {
    match expr {
        Expr::Group(g) => ungroup(*g.expr),
        other => other,
    }
}

/// The timeout: a number of seconds (checked here) or a `Duration` expression.
enum Timeout {
    Secs(Lit),
    Expr(Expr),
}

impl Timeout {
    /// The value of the key `key` (`timeout` or `cancellation_timeout`).
    fn parse_value(input: ParseStream<'_>, key: &str) -> syn::Result<Timeout> {
        let how = format!(
            "`{key}` is a non-negative number of seconds (`{key} = 2.5`) or a `Duration` \
             expression"
        );
        let how = how.as_str();
        let expr = ungroup(input.parse()?);
        match expr {
            Expr::Lit(l) => match &l.lit {
                Lit::Int(i) => {
                    i.base10_parse::<u64>()?;
                    Ok(Timeout::Secs(l.lit))
                }
                Lit::Float(f) => {
                    let secs = f.base10_parse::<f64>()?;
                    if !(secs.is_finite() && secs < u64::MAX as f64) {
                        return Err(syn::Error::new(
                            f.span(),
                            format!("{how}; this is too large"),
                        ));
                    }
                    Ok(Timeout::Secs(l.lit))
                }
                other => Err(syn::Error::new(other.span(), how)),
            },
            Expr::Unary(u) if matches!(u.op, UnOp::Neg(_)) => Err(syn::Error::new_spanned(
                u,
                format!("{how}; a negative timeout has no meaning"),
            )),
            other => Ok(Timeout::Expr(other)),
        }
    }
}

/// The macro's input as written.
///
/// ```text
/// input := (key "=" value ",")* Block ","?
/// key   := "mode" | "shield" | "timeout" | "cancellation_timeout" | "crate"
/// ```
struct Input {
    mode: Slot<Mode>,
    shield: Slot<Expr>,
    timeout: Slot<Timeout>,
    cancellation_timeout: Slot<Timeout>,
    krate: Slot<Path>,
    body: Option<Block>,
    /// Mistakes in the keys: reported, and the rest still expanded.
    errors: Errors,
}

impl Parse for Input {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let mut out = Input {
            mode: Slot::new("mode"),
            shield: Slot::new("shield"),
            timeout: Slot::new("timeout"),
            cancellation_timeout: Slot::new("cancellation_timeout"),
            krate: Slot::new("crate"),
            body: None,
            errors: Errors::default(),
        };
        while !input.is_empty() {
            if input.peek(syn::token::Brace) {
                out.body = Some(input.parse()?);
                if input.peek(Token![,]) {
                    input.parse::<Token![,]>()?;
                }
                if !input.is_empty() {
                    out.errors.push(input.error(
                        "the body `{ ... }` comes last: `pending_group!(mode = 1, { ... })`",
                    ));
                    input.parse::<TokenStream>()?;
                }
                break;
            }
            if let Err(e) = out.parse_key(input) {
                // Recover: skip to the next key, so that the body is still expanded and
                // each mistake gives one error.
                out.errors.push(e);
                while !input.is_empty() && !input.peek(Token![,]) && !input.peek(syn::token::Brace)
                {
                    input.parse::<proc_macro2::TokenTree>()?;
                }
            }
            if input.peek(Token![,]) {
                input.parse::<Token![,]>()?;
            } else if !input.is_empty() && !input.peek(syn::token::Brace) {
                out.errors
                    .push(input.error("expected `,` between the keys"));
                return Ok(out);
            }
        }
        Ok(out)
    }
}

impl Input {
    /// `key "=" value`
    fn parse_key(&mut self, input: ParseStream<'_>) -> syn::Result<()> {
        let lookahead = input.lookahead1();
        if lookahead.peek(kw::mode) {
            let key: kw::mode = input.parse()?;
            input.parse::<Token![=]>()?;
            self.mode.set(key.span, Mode::parse_value(input)?)
        } else if lookahead.peek(kw::shield) {
            let key: kw::shield = input.parse()?;
            input.parse::<Token![=]>()?;
            let expr = ungroup(input.parse()?);
            if let Expr::Lit(l) = &expr {
                if !matches!(l.lit, Lit::Bool(_)) {
                    return Err(syn::Error::new(
                        l.lit.span(),
                        "`shield` is `true` or `false` (or a `bool` expression)",
                    ));
                }
            }
            self.shield.set(key.span, expr)
        } else if lookahead.peek(kw::timeout) {
            let key: kw::timeout = input.parse()?;
            input.parse::<Token![=]>()?;
            self.timeout
                .set(key.span, Timeout::parse_value(input, "timeout")?)
        } else if lookahead.peek(kw::cancellation_timeout) {
            let key: kw::cancellation_timeout = input.parse()?;
            input.parse::<Token![=]>()?;
            self.cancellation_timeout.set(
                key.span,
                Timeout::parse_value(input, "cancellation_timeout")?,
            )
        } else if lookahead.peek(Token![crate]) {
            config::parse_crate(input, &mut self.krate)
        } else {
            Err(config::unknown_key(input, lookahead, WHAT, KEYS))
        }
    }
}

/// What expansion reads.
struct Config {
    mode: Option<Mode>,
    shield: Option<Expr>,
    timeout: Option<Timeout>,
    cancellation_timeout: Option<Timeout>,
    krate: TokenStream,
}

pub(crate) fn expand(input: TokenStream) -> TokenStream {
    let mut errors = Errors::default();
    let mut input = match syn::parse2::<Input>(input) {
        Ok(i) => i,
        Err(e) => {
            errors.push(e);
            return errors.emit(TokenStream::new());
        }
    };
    errors.append(std::mem::take(&mut input.errors));
    let Some(body) = input.body else {
        errors.push(syn::Error::new(
            Span::call_site(),
            "pending_group! needs a body: `pending_group!(mode = 1, { ... })`",
        ));
        return errors.emit(TokenStream::new());
    };
    let config = Config {
        mode: input.mode.take(),
        shield: input.shield.take(),
        timeout: input.timeout.take(),
        cancellation_timeout: input.cancellation_timeout.take(),
        krate: config::crate_path(input.krate.take()),
    };
    let group = expand_group(&config, body);
    if errors.is_empty() {
        group
    } else {
        // `{ compile_error!(..); group }`: the error, and the body still type-checked.
        let errors = errors.emit(TokenStream::new());
        quote!({ #errors #group })
    }
}

fn expand_group(config: &Config, body: Block) -> TokenStream {
    let krate = &config.krate;
    let mode = config.mode.as_ref().map(|m| match m {
        Mode::Variant(v) => {
            let v = syn::Ident::new(v, Span::call_site());
            quote!(.mode(#krate::GroupMode::#v))
        }
        Mode::Expr(e) => quote!(.mode(#e)),
    });
    let shield = config.shield.as_ref().map(|s| quote!(.shield(#s)));
    let timeout = config
        .timeout
        .as_ref()
        .map(duration)
        .map(|d| quote!(.timeout(#d)));
    let cancellation_timeout = config
        .cancellation_timeout
        .as_ref()
        .map(duration)
        .map(|d| quote!(.cancellation_timeout(#d)));
    // `.await` carries the macro's span: outside an async context, rustc's "only allowed
    // inside `async` functions and blocks" points at the `pending_group!(..)` call.
    let await_ = quote_spanned!(Span::call_site()=> .await);
    quote! {
        #krate::PendingGroup::builder()
            #mode
            #shield
            #timeout
            #cancellation_timeout
            .build()
            .run(async #body)
            #await_
    }
}

/// A `Duration` expression for a timeout key's value.
fn duration(t: &Timeout) -> TokenStream {
    match t {
        Timeout::Secs(Lit::Int(i)) => {
            let secs = i.base10_parse::<u64>().expect("checked when parsed");
            let secs = Literal::u64_unsuffixed(secs);
            quote!(::core::time::Duration::from_secs(#secs))
        }
        Timeout::Secs(lit) => {
            let secs = match lit {
                Lit::Float(f) => f.base10_parse::<f64>().expect("checked when parsed"),
                _ => unreachable!("only numbers are kept"),
            };
            let secs = Literal::f64_unsuffixed(secs);
            quote!(::core::time::Duration::from_secs_f64(#secs))
        }
        Timeout::Expr(e) => quote!(#e),
    }
}
