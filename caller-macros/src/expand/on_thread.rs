//! `#[on_thread]`: calling the function schedules its body on another thread and returns a
//! `Pending` of its value. [`expand`] runs the phases; the rest generates the function.

use proc_macro2::{Span, TokenStream};
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{ItemFn, ReturnType, Signature, Type};

use crate::args::{Args, ON_THREAD};
use crate::ast::{self, OnThread, StateParam, Target};
use crate::errors::Errors;
use crate::expand::{closure, fn_path, item_fn, resolve_first, send_fn};
use crate::valid::{self, SendCheck, Verdict};

pub(crate) fn expand(args: TokenStream, item: TokenStream) -> TokenStream {
    let mut errors = Errors::default();
    let args = Args::parse_attr(&ON_THREAD, args, &mut errors);
    let config = OnThread::build(args, &mut errors);
    let goes_on = "a `fn` or `async fn` with a body";
    let (mut func, mut errors) = match ast::parse_fn(&item, errors, &ON_THREAD, goes_on) {
        Ok(parsed) => parsed,
        Err(tokens) => return tokens,
    };
    // The state parameter leaves the signature: the caller's thread supplies it.
    let state = match &config.state {
        None => None,
        Some(name) => match valid::state_param(&func.sig, name) {
            Ok((position, param)) => {
                remove_input(&mut func.sig, position);
                Some(param)
            }
            Err(e) => {
                errors.push(e);
                return errors.emit(item);
            }
        },
    };
    let state = state.as_ref();
    let tokens = match valid::on_thread(&func.sig, &mut errors) {
        Verdict::Expand(checks) => expand_fn(&config, &func, state, &checks),
        Verdict::Stub => expand_stub(&config, &func, state),
        Verdict::AsWritten => item,
    };
    errors.emit(tokens)
}

fn remove_input(sig: &mut Signature, position: usize) {
    let inputs = std::mem::take(&mut sig.inputs);
    sig.inputs = inputs
        .into_iter()
        .enumerate()
        .filter_map(|(i, input)| (i != position).then_some(input))
        .collect();
}

/// What the body becomes.
struct Body {
    /// The pending's value type.
    value: Type,
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
    let ret = valid::return_type(&sig.output);
    let is_async = sig.asyncness.is_some();
    let params = match state {
        None => quote!(||),
        Some(StateParam { pat, ty }) => quote!(|#pat: &mut #ty|),
    };
    let closure = closure(is_async, params, &sig.output, block);
    let (value, helper) = match (valid::result_ok_type(&ret), is_async, state.is_some()) {
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
fn outer_signature(config: &OnThread, sig: &Signature, value: &Type) -> Signature {
    let krate = &config.krate;
    let mut sig = sig.clone();
    sig.asyncness = None;
    sig.output = syn::parse_quote_spanned! {sig.output.span()=> -> #krate::Pending<#value> };
    sig
}

fn expand_fn(
    config: &OnThread,
    func: &ItemFn,
    state: Option<&StateParam>,
    checks: &[SendCheck],
) -> TokenStream {
    let krate = &config.krate;
    let Body {
        value,
        helper: (helper, rest),
        closure,
    } = body(func, state);
    let sig = &func.sig;
    let outer = outer_signature(config, sig, &value);
    let name = fn_path(krate);
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
            resolve_first(quote_spanned!(expr.span()=> #krate::__private::on(#expr)))
        }
    };
    let send = quote!(#call(#at, #options, #closure));
    send_fn(krate, func, &outer, checks, resolve, send)
}

/// What a function with a signature error expands to: the signature it would have had
/// (so that callers type-check) and its body type-checked in place, never scheduled.
fn expand_stub(config: &OnThread, func: &ItemFn, state: Option<&StateParam>) -> TokenStream {
    let Body { value, closure, .. } = body(func, state);
    let outer = outer_signature(config, &func.sig, &value);
    let body = quote! {
        let _ = #closure;
        ::core::unreachable!()
    };
    item_fn(TokenStream::new(), func, &outer, body)
}
