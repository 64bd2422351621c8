//! Expansion phase: code generation, one file per macro. Each reads only its final
//! configuration ([`crate::ast`]) and the [`Verdict`](crate::valid::Verdict) on the
//! function, and drives the phases for its macro (parse, validate, expand). This file
//! holds what they share: the function re-emitted around a new body, the body as a
//! closure, the function's path, the `Send` assertions.

pub(crate) mod entry;
pub(crate) mod group;
pub(crate) mod on_thread;
pub(crate) mod queued;

use proc_macro2::{Span, TokenStream};
use quote::{quote, quote_spanned};
use syn::{Attribute, Block, ItemFn, ReturnType, Signature};

use crate::valid::SendCheck;

/// `func` with a new signature and body: `prefix`, its outer attributes, `vis sig`, and a
/// body of its inner attributes (`#![..]`, kept at the top, as tracing-attributes does)
/// then `body`.
pub(crate) fn item_fn(
    prefix: TokenStream,
    func: &ItemFn,
    sig: &Signature,
    body: TokenStream,
) -> TokenStream {
    let (outer, inner): (Vec<&Attribute>, Vec<&Attribute>) = func
        .attrs
        .iter()
        .partition(|a| matches!(a.style, syn::AttrStyle::Outer));
    let vis = &func.vis;
    quote! {
        #prefix
        #(#outer)*
        #vis #sig {
            #(#inner)*
            #body
        }
    }
}

/// The function's body as a closure that moves the arguments in: `move #params #output
/// #block`, `async` first for an `async fn`.
pub(crate) fn closure(
    is_async: bool,
    params: TokenStream,
    output: &ReturnType,
    block: &Block,
) -> TokenStream {
    if is_async {
        quote!(async move #params #output #block)
    } else {
        quote!(move #params #output #block)
    }
}

/// An expression giving the path of the function being expanded, as `type_name` prints
/// it (`app::db::load`, `app::Db::load`, `<app::Db as app::Store>::load`): a nested
/// marker `fn` is named by its path, from which `__private::fn_name` strips its own name.
pub(crate) fn fn_path(krate: &TokenStream) -> TokenStream {
    let marker = syn::Ident::new("__caller_fn", Span::mixed_site());
    quote!(#krate::__private::fn_name({ fn #marker() {} #marker }))
}

/// `func` re-emitted with the signature `outer`, its body sent elsewhere by `send`: first
/// the assertions that each argument is `Send` (each spanned on the user's type, so that a
/// non-`Send` one is an error in our words there), then `resolve` (see [`resolve_first`]).
pub(crate) fn send_fn(
    krate: &TokenStream,
    func: &ItemFn,
    outer: &Signature,
    checks: &[SendCheck],
    resolve: TokenStream,
    send: TokenStream,
) -> TokenStream {
    let checks = checks.iter().map(|check| match check {
        SendCheck::Type(ty, span) => quote_spanned! {*span=>
            #krate::__private::assert_send_arg::<#ty>();
        },
        SendCheck::Value(ident, span) => quote_spanned! {*span=>
            #krate::__private::assert_send_arg_val(&#ident);
        },
    });
    let body = quote! {
        #(#checks)*
        #resolve
        #send
    };
    item_fn(TokenStream::new(), func, outer, body)
}

/// `caller = EXPR` is evaluated before the body is sent (it may borrow an argument that the
/// closure then moves): the `let` that binds `target` (the expression that resolves it) to
/// a local, and that local.
pub(crate) fn resolve_first(target: TokenStream) -> (TokenStream, TokenStream) {
    let local = syn::Ident::new("__caller_target", Span::mixed_site());
    (quote!(let #local = #target;), quote!(#local))
}
