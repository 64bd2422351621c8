//! `#[on_thread]`: calling the function schedules its body on another thread and returns a
//! `Pending` of its value.
//!
//! Parse ([`Args`]) → validate ([`Args::build`], the signature checks in
//! [`expand`]) → expand ([`expand_fn`], reading only the final [`Config`]).

use proc_macro2::{Span, TokenStream};
use quote::{quote, quote_spanned};
use syn::parse::{Parse, ParseStream};
use syn::spanned::Spanned;
use syn::{Expr, Ident, ItemFn, LitStr, Path, ReturnType, Token};

use crate::config::{self, kw, Errors, Slot};

const WHAT: &str = "#[on_thread]";
const KEYS: &str = "`main`, `name = \"...\"`, `caller = EXPR`, `state = param`, `crate = path`";

mod state_kw {
    syn::custom_keyword!(state);
}
const WHY: &str = "the call runs on another thread, after this function has returned";

/// The arguments as written, each key at most once.
///
/// ```text
/// args := (arg ("," arg)* ","?)?
/// arg  := "main" | "name" "=" LitStr | "caller" "=" Expr | "state" "=" Ident
///       | "crate" "=" Path
/// ```
struct Args {
    main: Slot<()>,
    name: Slot<LitStr>,
    caller: Slot<Expr>,
    /// The parameter that receives the caller's thread-confined state.
    state: Slot<Ident>,
    krate: Slot<Path>,
    /// Where each target key was written, in order (to point at the second one).
    targets: Vec<Span>,
}

impl Default for Args {
    fn default() -> Self {
        Args {
            main: Slot::new("main"),
            name: Slot::new("name"),
            caller: Slot::new("caller"),
            state: Slot::new("state"),
            krate: Slot::new("crate"),
            targets: Vec::new(),
        }
    }
}

impl Parse for Args {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let mut args = Args::default();
        config::parse_list(input, |input| {
            let lookahead = input.lookahead1();
            if lookahead.peek(kw::main) {
                let key: kw::main = input.parse()?;
                args.targets.push(key.span);
                args.main.set(key.span, ())
            } else if lookahead.peek(kw::name) {
                let key: kw::name = input.parse()?;
                input.parse::<Token![=]>()?;
                if !input.peek(LitStr) {
                    return Err(input.error("`name` takes a string literal: `name = \"db\"`"));
                }
                let lit: LitStr = input.parse()?;
                if lit.value().is_empty() {
                    return Err(syn::Error::new(lit.span(), "the caller's name is empty"));
                }
                args.targets.push(key.span);
                args.name.set(key.span, lit)
            } else if lookahead.peek(kw::caller) {
                let key: kw::caller = input.parse()?;
                input.parse::<Token![=]>()?;
                let expr: Expr = input.parse()?;
                args.targets.push(key.span);
                args.caller.set(key.span, expr)
            } else if lookahead.peek(state_kw::state) {
                let key: state_kw::state = input.parse()?;
                input.parse::<Token![=]>()?;
                if !input.peek(Ident) {
                    return Err(input.error(
                        "`state` names the parameter that receives the caller's state: \
                         `state = db` for `db: &mut Db`",
                    ));
                }
                args.state.set(key.span, input.parse()?)
            } else if lookahead.peek(Token![crate]) {
                config::parse_crate(input, &mut args.krate)
            } else {
                Err(config::unknown_key(input, lookahead, WHAT, KEYS))
            }
        })?;
        Ok(args)
    }
}

/// Where the call runs.
enum Target {
    /// A pooled worker (`to_thread`).
    Pool,
    /// The main thread's caller.
    Main,
    /// A child caller of that name, of the current caller or else of the main thread's.
    Name(LitStr),
    /// Any caller, given by an expression evaluated at each call.
    Caller(Expr),
}

/// The final configuration: what expansion reads.
struct Config {
    target: Target,
    /// The parameter that receives `&mut` to the caller's state (`state = ..`).
    state: Option<Ident>,
    krate: TokenStream,
    /// A mistake that still leaves a usable configuration (reported, not cascaded).
    deferred: Option<syn::Error>,
}

impl Args {
    /// Check the combination of keys: at most one target.
    fn build(self) -> syn::Result<Config> {
        if let Some(second) = self.targets.get(1) {
            // A repeat of one key is reported by its slot; this is two different keys.
            return Err(syn::Error::new(
                *second,
                "choose one target: `main`, `name = ..` and `caller = ..` each say where the \
                 call runs",
            ));
        }
        let state_span = self.state.span();
        let target = if self.main.span().is_some() {
            Target::Main
        } else if let Some(name) = self.name.take() {
            Target::Name(name)
        } else if let Some(expr) = self.caller.take() {
            Target::Caller(expr)
        } else {
            Target::Pool
        };
        // Still strip the state parameter, so that it is not reported as a borrow too.
        let deferred = match (state_span, &target) {
            (Some(span), Target::Pool | Target::Main) => Some(syn::Error::new(
                span,
                "`state = ..` needs the caller that owns the state (one made with \
                 `Caller::new_thread_with`): choose it with `caller = EXPR` or `name = \"..\"`",
            )),
            _ => None,
        };
        Ok(Config {
            target,
            state: self.state.take(),
            krate: config::crate_path(self.krate.take()),
            deferred,
        })
    }
}

pub(crate) fn expand(args: TokenStream, item: TokenStream) -> TokenStream {
    let mut errors = Errors::default();
    let args: Args = config::parse_args(args, &mut errors);
    let mut config = match args.build() {
        Ok(c) => c,
        Err(e) => {
            errors.push(e);
            Args::default().build().expect("no keys, no conflict")
        }
    };
    if let Some(e) = config.deferred.take() {
        errors.push(e);
    }
    let (mut func, mut errors) =
        match config::parse_fn(&item, errors, WHAT, "a `fn` or `async fn` with a body") {
            Ok(parsed) => parsed,
            Err(tokens) => return tokens,
        };
    // The state parameter leaves the signature: the caller's thread supplies it.
    let state = match &config.state {
        None => None,
        Some(name) => match take_state_param(&mut func, name) {
            Ok(param) => Some(param),
            Err(e) => {
                errors.push(e);
                return errors.emit(item);
            }
        },
    };
    let state = state.as_ref();

    // Validate the signature; a mistake there gives the stub below, not the real call.
    let mut sig_errors = Errors::default();
    let checks = config::check_inputs(&func.sig, &config.krate, WHAT, WHY, &mut sig_errors);
    if let ReturnType::Type(_, ty) = &func.sig.output {
        if config::has_impl_trait(ty) {
            errors.push(syn::Error::new_spanned(
                ty,
                format!(
                    "{WHAT} cannot return `impl Trait`: the value is sent back in a \
                     `Pending<T>`, so name its type (or box it)"
                ),
            ));
            return errors.emit(item);
        }
        if let Some(part) = config::borrowed_part(ty) {
            sig_errors.push(syn::Error::new_spanned(
                part,
                format!("{WHAT} cannot return a borrow: {WHY}; return an owned value"),
            ));
        }
    }
    if !sig_errors.is_empty() {
        errors.append(sig_errors);
        return errors.emit(expand_stub(&config, func, state));
    }
    errors.emit(expand_fn(&config, func, state, checks))
}

/// The parameter that receives the caller's state: its pattern and the state's type.
struct StateParam {
    pat: syn::Pat,
    ty: syn::Type,
}

/// Remove the parameter named `name` (`name: &mut T`) from the signature.
fn take_state_param(func: &mut ItemFn, name: &Ident) -> syn::Result<StateParam> {
    let position = func.sig.inputs.iter().position(|input| match input {
        syn::FnArg::Typed(pt) => matches!(&*pt.pat, syn::Pat::Ident(p) if p.ident == *name),
        syn::FnArg::Receiver(_) => false,
    });
    let Some(position) = position else {
        return Err(syn::Error::new(
            name.span(),
            format!("`state = {name}` names no parameter of this function: add `{name}: &mut T`"),
        ));
    };
    let inputs = std::mem::take(&mut func.sig.inputs);
    let mut param = None;
    for (i, input) in inputs.into_pairs().enumerate() {
        let input = input.into_value();
        if i == position {
            param = Some(input);
        } else {
            func.sig.inputs.push(input);
        }
    }
    let Some(syn::FnArg::Typed(pt)) = param else {
        unreachable!("the position of a typed parameter")
    };
    match &*pt.ty {
        syn::Type::Reference(r) if r.mutability.is_some() && r.lifetime.is_none() => {
            Ok(StateParam {
                pat: (*pt.pat).clone(),
                ty: (*r.elem).clone(),
            })
        }
        other => Err(syn::Error::new_spanned(
            other,
            format!(
                "the state parameter `{name}` takes `&mut T`, where `T` is the state the \
                 caller's thread owns"
            ),
        )),
    }
}

/// What the body becomes.
struct Body {
    /// The pending's value type.
    value: syn::Type,
    /// The `__private` function that schedules it, and how many of its type parameters
    /// follow the value type.
    helper: (&'static str, usize),
    /// The body as a closure (`move || -> R { .. }`, `async move || -> R { .. }`).
    closure: TokenStream,
}

/// Turn the body into a closure for `call` (sync), `call_async`, or `try_call` /
/// `try_call_async` when the function returns `Result<T, E>` (then an `Err` is a failure of
/// the pending and the value type is `T`).
///
/// With a state parameter, the closure takes it (`move |db: &mut Db| ..`) and the helpers
/// are their `_state` forms, which hand it the caller's state.
fn body(func: &ItemFn, state: Option<&StateParam>) -> Body {
    let ItemFn { sig, block, .. } = func;
    let output = &sig.output;
    let ret = config::return_type(output);
    let is_async = sig.asyncness.is_some();
    let params = match state {
        None => quote!(||),
        Some(StateParam { pat, ty }) => quote!(|#pat: &mut #ty|),
    };
    let closure = if is_async {
        quote!(async move #params #output #block)
    } else {
        quote!(move #params #output #block)
    };
    let (value, helper) = match (config::result_ok_type(&ret), is_async, state.is_some()) {
        (Some(ok), false, false) => (ok.clone(), ("try_call", 2)),
        (Some(ok), true, false) => (ok.clone(), ("try_call_async", 3)),
        (None, false, false) => (ret, ("call", 1)),
        (None, true, false) => (ret, ("call_async", 2)),
        (Some(ok), false, true) => (ok.clone(), ("try_call_state", 3)),
        (Some(ok), true, true) => (ok.clone(), ("try_call_state_async", 3)),
        (None, false, true) => (ret, ("call_state", 2)),
        (None, true, true) => (ret, ("call_state_async", 2)),
    };
    Body {
        value,
        helper,
        closure,
    }
}

/// The outer signature: not async, returning `Pending<T>`; everything else as written.
fn outer_signature(config: &Config, sig: &syn::Signature, value: &syn::Type) -> syn::Signature {
    let krate = &config.krate;
    let mut sig = sig.clone();
    sig.asyncness = None;
    sig.output = syn::parse_quote_spanned! {sig.output.span()=> -> #krate::Pending<#value> };
    sig
}

fn expand_fn(
    config: &Config,
    func: ItemFn,
    state: Option<&StateParam>,
    checks: Vec<TokenStream>,
) -> TokenStream {
    let krate = &config.krate;
    let Body {
        value,
        helper: (helper, rest),
        closure,
    } = body(&func, state);
    let ItemFn {
        attrs, vis, sig, ..
    } = &func;
    let outer = outer_signature(config, sig, &value);
    let (attrs, inner) = config::split_attrs(attrs);
    let name = config::fn_path(krate);
    let options = quote!(#krate::CallOptions::new().name(#name));
    // The value type is named in the turbofish: a non-`Send` one is then one error, in our
    // words, at the user's return type.
    let helper = syn::Ident::new(helper, Span::call_site());
    let infer = (0..rest).map(|_| quote!(_));
    let value_span = match &sig.output {
        ReturnType::Type(_, ty) => ty.span(),
        ReturnType::Default => sig.ident.span(),
    };
    let call = quote_spanned! {value_span=> #krate::__private::#helper::<#value, #(#infer),*> };
    let (resolve, at) = match &config.target {
        Target::Pool => (TokenStream::new(), quote!(#krate::__private::pool())),
        Target::Main => (TokenStream::new(), quote!(#krate::__private::main_caller())),
        // With state, only an existing caller will do: one made on the fly holds none.
        Target::Name(name) if config.state.is_some() => (
            TokenStream::new(),
            quote!(#krate::__private::named_state_caller(#name)),
        ),
        Target::Name(name) => (
            TokenStream::new(),
            quote!(#krate::__private::named_caller(#name)),
        ),
        Target::Caller(expr) => {
            // Resolved first: it may borrow an argument that the closure then moves.
            let target = syn::Ident::new("__caller_target", Span::mixed_site());
            let resolve = quote_spanned! {expr.span()=>
                let #target = #krate::__private::on(#expr);
            };
            (resolve, quote!(#target))
        }
    };
    quote! {
        #(#attrs)*
        #vis #outer {
            #(#inner)*
            #(#checks)*
            #resolve
            #call(#at, #options, #closure)
        }
    }
}

/// What a function with a signature error expands to: the signature it would have had
/// (so that callers type-check) and its body type-checked in place, never scheduled.
fn expand_stub(config: &Config, func: ItemFn, state: Option<&StateParam>) -> TokenStream {
    let Body { value, closure, .. } = body(&func, state);
    let ItemFn {
        attrs, vis, sig, ..
    } = &func;
    let outer = outer_signature(config, sig, &value);
    let (attrs, inner) = config::split_attrs(attrs);
    quote! {
        #(#attrs)*
        #vis #outer {
            #(#inner)*
            let _ = #closure;
            ::core::unreachable!()
        }
    }
}
