//! Parse phase, the typed input: each macro's final configuration, built from its
//! [`Args`] (`build` checks how the keys combine: one target, `state` with a caller), the
//! group's body, and the annotated function. Validation and expansion read only these.

use proc_macro2::{Span, TokenStream, TokenTree};
use syn::ext::IdentExt;
use syn::parse::ParseStream;
use syn::{Block, Expr, Ident, ItemFn, LitStr, Pat, Token, Type};

use crate::args::{self, at_body, crate_path, Args, Key, Spec};
use crate::duration::DurationArg;
use crate::errors::Errors;
use crate::mode::Mode;

/// Parse the function an attribute is on. On failure the error, saying what the attribute
/// `goes_on`, is emitted after the item unchanged (so the IDE keeps the item).
pub(crate) fn parse_fn(
    item: &TokenStream,
    mut errors: Errors,
    spec: &Spec,
    goes_on: &str,
) -> Result<(ItemFn, Errors), TokenStream> {
    match syn::parse2(item.clone()) {
        Ok(f) => Ok((f, errors)),
        Err(e) => {
            let what = spec.what;
            errors.push(syn::Error::new(
                e.span(),
                format!("{what} goes on {goes_on}: {e}"),
            ));
            Err(errors.emit(item.clone()))
        }
    }
}

/// Where an `#[on_thread]` call runs.
pub(crate) enum Target {
    /// A pooled worker (`to_thread`).
    Pool,
    /// The main thread's caller.
    Main,
    /// A child caller of that name, of the current caller or else of the main thread's.
    Name(LitStr),
    /// Any caller, given by an expression evaluated at each call.
    Caller(Expr),
}

/// `#[on_thread]`'s final configuration.
pub(crate) struct OnThread {
    pub(crate) target: Target,
    /// The parameter that receives `&mut` to the caller's state (`state = ..`).
    pub(crate) state: Option<Ident>,
    pub(crate) krate: TokenStream,
}

impl OnThread {
    /// Combine the keys: at most one target, and `state` only with a caller that can own
    /// it. A conflict of targets is reported and gives the default configuration.
    pub(crate) fn build(args: Args, errors: &mut Errors) -> OnThread {
        let mut targets = args
            .order
            .iter()
            .filter(|(key, _)| matches!(key, Key::Main | Key::Name | Key::Caller));
        if let Some((_, second)) = targets.nth(1) {
            // A repeat of one key is reported by its slot; this is two different keys.
            errors.push(syn::Error::new(
                *second,
                "choose one target: `main`, `name = ..` and `caller = ..` each say where the \
                 call runs",
            ));
            return OnThread::build(Args::default(), errors);
        }
        let target = if args.main.span().is_some() {
            Target::Main
        } else if let Some(name) = args.name.take() {
            Target::Name(name)
        } else if let Some(expr) = args.caller.take() {
            Target::Caller(expr)
        } else {
            Target::Pool
        };
        if let (Some(span), Target::Pool | Target::Main) = (args.state.span(), &target) {
            // The state parameter is still stripped, so that it is not reported as a borrow.
            errors.push(syn::Error::new(
                span,
                "`state = ..` needs the caller that owns the state (one made with \
                 `Caller::new_thread_with`): choose it with `caller = EXPR` or `name = \"..\"`",
            ));
        }
        OnThread {
            target,
            state: args.state.take(),
            krate: crate_path(args.krate.take()),
        }
    }
}

/// The parameter that receives an `#[on_thread]` caller's state: its pattern and the
/// state's type (`db: &mut Db` gives `db` and `Db`).
pub(crate) struct StateParam {
    pub(crate) pat: Pat,
    pub(crate) ty: Type,
}

/// `#[queued]`'s final configuration.
pub(crate) struct Queued {
    /// The caller whose queue runs the calls; `None`: `queue_caller()`.
    pub(crate) caller: Option<Expr>,
    pub(crate) krate: TokenStream,
}

impl Queued {
    pub(crate) fn build(args: Args) -> Queued {
        Queued {
            caller: args.caller.take(),
            krate: crate_path(args.krate.take()),
        }
    }
}

/// Which entry attribute is expanding.
#[derive(Clone, Copy)]
pub(crate) enum Kind {
    Main,
    Test,
}

impl Kind {
    pub(crate) fn spec(self) -> &'static Spec {
        match self {
            Kind::Main => &args::MAIN,
            Kind::Test => &args::TEST,
        }
    }
}

/// `#[caller::main]`'s or `#[caller::test]`'s final configuration.
pub(crate) struct Entry {
    pub(crate) kind: Kind,
    /// The entry caller's name.
    pub(crate) name: String,
    pub(crate) krate: TokenStream,
}

impl Entry {
    /// `func` names the test's caller when no `name` is given.
    pub(crate) fn build(kind: Kind, args: Args, func: &Ident) -> Entry {
        let name = match (args.name.take(), kind) {
            (Some(lit), _) => lit.value(),
            (None, Kind::Main) => "main".to_owned(),
            (None, Kind::Test) => func.unraw().to_string(),
        };
        Entry {
            kind,
            name,
            krate: crate_path(args.krate.take()),
        }
    }
}

/// `pending_group!`'s final configuration and body.
pub(crate) struct Group {
    pub(crate) mode: Option<Mode>,
    pub(crate) shield: Option<Expr>,
    pub(crate) timeout: Option<DurationArg>,
    pub(crate) cancellation_timeout: Option<DurationArg>,
    pub(crate) krate: TokenStream,
    /// `None` when it is missing or malformed (reported).
    pub(crate) body: Option<Body>,
}

impl Group {
    /// ```text
    /// input := (key "=" value ",")* body    (keys: see args.rs; body: see Body::parse)
    /// ```
    /// Every mistake is reported at its token and parsing goes on after it, keeping the
    /// good keys, so that each mistake gives one error and the group keeps its type.
    pub(crate) fn parse(input: ParseStream<'_>, errors: &mut Errors) -> syn::Result<Group> {
        let (args, found) = Args::parse(&args::GROUP, input)?;
        errors.append(found);
        let body = if at_body(input) {
            let body = Body::parse(input).map_err(|e| errors.push(e)).ok();
            input.parse::<TokenStream>()?;
            body
        } else {
            errors.push(syn::Error::new(
                Span::call_site(),
                "pending_group! needs a body: `pending_group!(mode = 1, { ... })`",
            ));
            None
        };
        Ok(Group {
            mode: args.mode.take(),
            shield: args.shield.take(),
            timeout: args.timeout.take(),
            cancellation_timeout: args.cancellation_timeout.take(),
            krate: crate_path(args.krate.take()),
            body,
        })
    }
}

/// The group's body and, if the user named it, the binding of the group inside it.
pub(crate) struct Body {
    /// `|pg|` or `|pg: PendingGroup|`.
    pub(crate) name: Option<(Pat, Option<Type>)>,
    pub(crate) block: Block,
}

impl Body {
    /// ```text
    /// body := ( Block | "<" Stmt* ">" | "|" Pat (":" Type)? "|" ( Block | "<" Stmt* ">" | Expr ) ) ","?
    /// ```
    /// and nothing after it.
    fn parse(input: ParseStream<'_>) -> syn::Result<Body> {
        let name = if input.peek(Token![|]) {
            Some(Body::parse_name(input)?)
        } else {
            None
        };
        let block = if input.peek(Token![<]) {
            Body::parse_angle(input)?
        } else if input.peek(syn::token::Brace) {
            let block: Block = input.parse()?;
            Body::end(
                input,
                "the body `{ ... }` comes last: `pending_group!(mode = 1, { ... })`",
            )?;
            block
        } else if name.is_some() {
            // `|pg| expr`, as a closure's body may be.
            let expr: Expr = input.parse()?;
            Body::end(input, "the body comes last: `pending_group!(|pg| { ... })`")?;
            syn::parse_quote!({ #expr })
        } else {
            return Err(input.error(
                "expected the body: `{ ... }`, `< ... >`, or `|pg| { ... }` to name the group",
            ));
        };
        Ok(Body { name, block })
    }

    /// `"|" Pat (":" Type)? "|"`
    fn parse_name(input: ParseStream<'_>) -> syn::Result<(Pat, Option<Type>)> {
        let open: Token![|] = input.parse()?;
        // The name is what lies before the next `|`: found first, so that a missing `|` is
        // one error at the opening one, not a pattern error in the body.
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
        let name = |inner: ParseStream<'_>| {
            let pat = Pat::parse_single(inner)?;
            let ty = if inner.peek(Token![:]) {
                inner.parse::<Token![:]>()?;
                Some(inner.parse::<Type>()?)
            } else {
                None
            };
            Ok((pat, ty))
        };
        syn::parse::Parser::parse2(name, inside)
    }

    /// `"<" Stmt* ">"`: everything between this `<` and the last `>` (the design card's
    /// form). `<` and `>` are not delimiters, so the end is found by hand.
    fn parse_angle(input: ParseStream<'_>) -> syn::Result<Block> {
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
        let stmts = syn::parse::Parser::parse2(Block::parse_within, rest.into_iter().collect())?;
        Ok(Block {
            brace_token: syn::token::Brace(open.span),
            stmts,
        })
    }

    /// An optional `,`, then the end of the input; `error` if anything follows.
    fn end(input: ParseStream<'_>, error: &str) -> syn::Result<()> {
        if input.peek(Token![,]) {
            input.parse::<Token![,]>()?;
        }
        if !input.is_empty() {
            return Err(input.error(error));
        }
        Ok(())
    }
}
