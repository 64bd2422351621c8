//! `pending_group!(mode = 1, shield = true, timeout = 2500ms, |pg| { body })`: run `body`
//! inside a `PendingGroup` and evaluate to the group's result.
//!
//! Parse ([`Input`]) → validate (each value checked as it is parsed, see [`Mode`] and
//! [`DurationArg`]) → expand ([`expand`], reading only the final [`Config`]). Every mistake
//! is reported at its token and parsing goes on after it, so that each one gives one error
//! and the expansion that comes with the errors still has the group's type.

use proc_macro2::{Span, TokenStream, TokenTree};
use quote::{quote, quote_spanned};
use syn::parse::{Parse, ParseStream};
use syn::{Block, Expr, Lit, Pat, Path, Token, Type, UnOp};

use crate::config::{self, kw, ungroup, Errors, Slot};
use crate::duration::DurationArg;

const WHAT: &str = "pending_group!";
const KEYS: &str = "`mode = 0..=3 | name`, `shield = bool`, `timeout = 50ms | Duration`, \
                    `cancellation_timeout = 2s | Duration`, `crate = path`, then the body \
                    (`{ ... }`, `< ... >`, or `|pg| { ... }` to name the group)";
const MODES: &str = "0, 1, 2, 3, `ignore_cancelled`, `cancel_and_raise`, `cancel_quietly`, \
                     `raise`, `supervisor`";

/// The group's mode: async-kernel's number, one of our names, or any `GroupMode` expression.
enum Mode {
    Variant(&'static str),
    Expr(Expr),
}

/// The numbered modes, in async-kernel's order.
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

/// The body and, if the user named it, the binding of the group inside it.
struct Body {
    /// `|pg|` or `|pg: PendingGroup|`.
    name: Option<(Pat, Option<Type>)>,
    block: Block,
}

impl Body {
    /// ```text
    /// body := ( Block | "<" Stmt* ">" | "|" Pat (":" Type)? "|" ( Block | "<" Stmt* ">" | Expr ) ) ","?
    /// ```
    /// and nothing after it.
    fn parse(input: ParseStream<'_>) -> syn::Result<Body> {
        let name = if input.peek(Token![|]) {
            let open: Token![|] = input.parse()?;
            // The name is what lies before the next `|`: found first, so that a missing
            // `|` is one error at the opening one, not a pattern error in the body.
            let mut inside = TokenStream::new();
            while !input.peek(Token![|]) {
                if input.is_empty() {
                    return Err(syn::Error::new(
                        open.span,
                        "the group's name is closed by `|`: `pending_group!(|pg| { ... })`",
                    ));
                }
                inside.extend([input.parse::<TokenTree>()?]);
            }
            input.parse::<Token![|]>()?;
            Some(syn::parse::Parser::parse2(
                |inner: ParseStream<'_>| {
                    let pat = Pat::parse_single(inner)?;
                    let ty = if inner.peek(Token![:]) {
                        inner.parse::<Token![:]>()?;
                        Some(inner.parse::<Type>()?)
                    } else {
                        None
                    };
                    Ok((pat, ty))
                },
                inside,
            )?)
        } else {
            None
        };
        let block = if input.peek(Token![<]) {
            // `< stmts >`: everything between this `<` and the last `>` (the design card's
            // form). `<` and `>` are not delimiters, so the end is found by hand.
            let open: Token![<] = input.parse()?;
            let mut rest: Vec<TokenTree> = input.parse::<TokenStream>()?.into_iter().collect();
            if matches!(rest.last(), Some(TokenTree::Punct(p)) if p.as_char() == ',') {
                rest.pop();
            }
            match rest.pop() {
                Some(TokenTree::Punct(p)) if p.as_char() == '>' => {}
                last => {
                    let span = last.map_or(open.span, |t| t.span());
                    return Err(syn::Error::new(
                        span,
                        "the body `< ... >` ends with `>`, the last token of pending_group!",
                    ));
                }
            }
            let stmts =
                syn::parse::Parser::parse2(Block::parse_within, rest.into_iter().collect())?;
            Block {
                brace_token: syn::token::Brace(open.span),
                stmts,
            }
        } else if input.peek(syn::token::Brace) {
            let block: Block = input.parse()?;
            if input.peek(Token![,]) {
                input.parse::<Token![,]>()?;
            }
            if !input.is_empty() {
                return Err(input
                    .error("the body `{ ... }` comes last: `pending_group!(mode = 1, { ... })`"));
            }
            block
        } else if name.is_some() {
            // `|pg| expr`, as a closure's body may be.
            let expr: Expr = input.parse()?;
            if input.peek(Token![,]) {
                input.parse::<Token![,]>()?;
            }
            if !input.is_empty() {
                return Err(input.error("the body comes last: `pending_group!(|pg| { ... })`"));
            }
            syn::parse_quote!({ #expr })
        } else {
            return Err(input.error(
                "expected the body: `{ ... }`, `< ... >`, or `|pg| { ... }` to name the group",
            ));
        };
        Ok(Body { name, block })
    }
}

/// The macro's input as written.
///
/// ```text
/// input := (key "=" value ",")* body
/// key   := "mode" | "shield" | "timeout" | "cancellation_timeout" | "crate"
/// ```
struct Input {
    mode: Slot<Mode>,
    shield: Slot<Expr>,
    timeout: Slot<DurationArg>,
    cancellation_timeout: Slot<DurationArg>,
    krate: Slot<Path>,
    body: Option<Body>,
    /// The body was there but malformed (its error is in `errors`).
    bad_body: bool,
    /// Mistakes: reported, and the rest still expanded.
    errors: Errors,
}

/// Whether the next token starts the body.
fn at_body(input: ParseStream<'_>) -> bool {
    input.peek(syn::token::Brace) || input.peek(Token![|]) || input.peek(Token![<])
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
            bad_body: false,
            errors: Errors::default(),
        };
        while !input.is_empty() {
            if at_body(input) {
                match Body::parse(input) {
                    Ok(body) => out.body = Some(body),
                    Err(e) => {
                        out.errors.push(e);
                        out.bad_body = true;
                    }
                }
                input.parse::<TokenStream>()?;
                break;
            }
            if let Err(e) = out.parse_key(input) {
                // Recover: skip to the next key or the body, so that each mistake gives one
                // error and the body is still expanded.
                out.errors.push(e);
                skip_to_next(input)?;
            }
            if input.peek(Token![,]) {
                input.parse::<Token![,]>()?;
            } else if !input.is_empty() && !at_body(input) {
                out.errors
                    .push(input.error("expected `,` after the key's value"));
                skip_to_next(input)?;
                if input.peek(Token![,]) {
                    input.parse::<Token![,]>()?;
                }
            }
        }
        Ok(out)
    }
}

/// Skip the rest of a bad key: up to the next `,` or `{`.
fn skip_to_next(input: ParseStream<'_>) -> syn::Result<()> {
    while !input.is_empty() && !input.peek(Token![,]) && !input.peek(syn::token::Brace) {
        input.parse::<TokenTree>()?;
    }
    Ok(())
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
                .set(key.span, DurationArg::parse_value(input, "timeout")?)
        } else if lookahead.peek(kw::cancellation_timeout) {
            let key: kw::cancellation_timeout = input.parse()?;
            input.parse::<Token![=]>()?;
            self.cancellation_timeout.set(
                key.span,
                DurationArg::parse_value(input, "cancellation_timeout")?,
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
    timeout: Option<DurationArg>,
    cancellation_timeout: Option<DurationArg>,
    krate: TokenStream,
}

pub(crate) fn expand(input: TokenStream) -> TokenStream {
    let mut errors = Errors::default();
    let input = match syn::parse2::<Input>(input) {
        Ok(i) => i,
        Err(e) => {
            // Only a token stream that cannot be read at all gets here.
            errors.push(e);
            return with_errors(errors, fallback(&quote!(::caller)));
        }
    };
    let Input {
        mode,
        shield,
        timeout,
        cancellation_timeout,
        krate,
        body,
        bad_body,
        errors: input_errors,
    } = input;
    errors.append(input_errors);
    let config = Config {
        mode: mode.take(),
        shield: shield.take(),
        timeout: timeout.take(),
        cancellation_timeout: cancellation_timeout.take(),
        krate: config::crate_path(krate.take()),
    };
    let Some(body) = body else {
        if !bad_body {
            errors.push(syn::Error::new(
                Span::call_site(),
                "pending_group! needs a body: `pending_group!(mode = 1, { ... })`",
            ));
        }
        return with_errors(errors, fallback(&config.krate));
    };
    with_errors(errors, expand_group(&config, body))
}

/// `{ compile_error!(..); expr }`: the errors, each once, and an expression of the type the
/// macro would have had, so that nothing around the call breaks as well.
fn with_errors(errors: Errors, expr: TokenStream) -> TokenStream {
    if errors.is_empty() {
        return expr;
    }
    let errors = errors.emit(TokenStream::new());
    quote!({ #errors #expr })
}

/// In place of a group whose body is missing: the result of a group whose body is `()`.
fn fallback(krate: &TokenStream) -> TokenStream {
    quote! {
        ::core::result::Result::<::core::option::Option<()>, #krate::Error>::Ok(
            ::core::option::Option::None,
        )
    }
}

fn expand_group(config: &Config, body: Body) -> TokenStream {
    let krate = &config.krate;
    let mode = config.mode.as_ref().map(|m| match m {
        Mode::Variant(v) => {
            let v = syn::Ident::new(v, Span::call_site());
            quote!(.mode(#krate::GroupMode::#v))
        }
        Mode::Expr(e) => quote!(.mode(#e)),
    });
    let shield = config.shield.as_ref().map(|s| quote!(.shield(#s)));
    let timeout = config.timeout.as_ref().map(|d| {
        let d = d.to_expr();
        quote!(.timeout(#d))
    });
    let cancellation_timeout = config.cancellation_timeout.as_ref().map(|d| {
        let d = d.to_expr();
        quote!(.cancellation_timeout(#d))
    });
    let build = quote! {
        #krate::PendingGroup::builder()
            #mode
            #shield
            #timeout
            #cancellation_timeout
            .build()
    };
    // `.await` carries the macro's span: outside an async context, rustc's "only allowed
    // inside `async` functions and blocks" points at the `pending_group!(..)` call.
    let await_ = quote_spanned!(Span::call_site()=> .await);
    let Body { name, block } = body;
    match name {
        None => quote! {
            #build.run(async #block) #await_
        },
        Some((pat, ty)) => {
            // The body's own handle on the group: a clone (the group is an `Arc`), which
            // the body may keep, move to another thread, or drop.
            let group = syn::Ident::new("__caller_group", Span::mixed_site());
            let ty = ty.map(|t| quote!(: #t));
            quote! {
                {
                    let #group = #build;
                    let #pat #ty = ::core::clone::Clone::clone(&#group);
                    let #group = #group.run(async #block) #await_;
                    #group
                }
            }
        }
    }
}
