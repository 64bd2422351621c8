//! `#[queued]`: calling the function enqueues its body on that function's `queue_call`
//! queue and returns at once; the bodies run one at a time, in call order. [`expand`] runs
//! the phases; the rest generates the function.

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{ItemFn, ReturnType};

use crate::args::{Args, QUEUED};
use crate::ast::{self, Queued};
use crate::errors::Errors;
use crate::expand::{closure, fn_path, item_fn, resolve_first, send_fn};
use crate::valid::{self, SendCheck, Verdict};

pub(crate) fn expand(args: TokenStream, item: TokenStream) -> TokenStream {
    let mut errors = Errors::default();
    let config = Queued::build(Args::parse_attr(&QUEUED, args, &mut errors));
    let goes_on = "a `fn` or `async fn` with a body";
    let (func, mut errors) = match ast::parse_fn(&item, errors, &QUEUED, goes_on) {
        Ok(parsed) => parsed,
        Err(tokens) => return tokens,
    };
    let tokens = match valid::queued(&func.sig, &mut errors) {
        Verdict::Expand(checks) => expand_fn(&config, &func, &checks),
        Verdict::Stub => expand_stub(&func),
        Verdict::AsWritten => item,
    };
    errors.emit(tokens)
}

fn expand_fn(config: &Queued, func: &ItemFn, checks: &[SendCheck]) -> TokenStream {
    let krate = &config.krate;
    let ItemFn { sig, block, .. } = func;
    let name = fn_path(krate);
    // The body moves the arguments in, like #[on_thread]; the queue is keyed by this
    // closure's type, so every call of this function (per generic instantiation) shares one.
    let is_async = sig.asyncness.is_some();
    let job = closure(is_async, quote!(||), &sig.output, block);
    let enqueue = if is_async {
        quote!(#krate::__private::enqueue_async)
    } else {
        quote!(#krate::__private::enqueue)
    };
    let (resolve, target) = match &config.caller {
        Some(expr) => resolve_first(quote_spanned! {expr.span()=>
            #krate::__private::Target::into_caller(#expr)
        }),
        None => (TokenStream::new(), quote!(#krate::queue_caller())),
    };
    let mut outer = sig.clone();
    outer.asyncness = None;
    outer.output = ReturnType::Default;
    let send = quote!(#enqueue(#target, #name, #job));
    send_fn(krate, func, &outer, checks, resolve, send)
}

/// What a function with a signature error expands to: a function returning `()` with its
/// body type-checked in place, never queued.
fn expand_stub(func: &ItemFn) -> TokenStream {
    let mut sig = func.sig.clone();
    let output = std::mem::replace(&mut sig.output, ReturnType::Default);
    let is_async = sig.asyncness.take().is_some();
    let body = closure(is_async, quote!(||), &output, &func.block);
    item_fn(TokenStream::new(), func, &sig, quote!(let _ = #body;))
}
