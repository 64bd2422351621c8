//! `pending_group!(mode = 1, shield = true, timeout = 2500ms, |pg| { body })`: run `body`
//! inside a `PendingGroup` and evaluate to the group's result. [`expand`] runs the phases
//! (the values are checked as they are parsed); the rest generates the expression.

use proc_macro2::{Span, TokenStream};
use quote::{quote, quote_spanned};
use syn::parse::ParseStream;

use crate::ast::{Body, Group};
use crate::errors::Errors;
use crate::mode::Mode;

pub(crate) fn expand(input: TokenStream) -> TokenStream {
    let mut errors = Errors::default();
    let parse = |input: ParseStream<'_>| Group::parse(input, &mut errors);
    let group = syn::parse::Parser::parse2(parse, input);
    let group = match group {
        Ok(group) => group,
        Err(e) => {
            // Only a token stream that cannot be read at all gets here.
            errors.push(e);
            return errors.emit_in_expr(fallback(&quote!(::caller)));
        }
    };
    let tokens = match &group.body {
        Some(body) => expand_group(&group, body),
        None => fallback(&group.krate),
    };
    errors.emit_in_expr(tokens)
}

/// In place of a group whose body is missing: the result of a group whose body is `()`,
/// so that nothing around the call breaks as well.
fn fallback(krate: &TokenStream) -> TokenStream {
    quote! {
        ::core::result::Result::<::core::option::Option<()>, #krate::Error>::Ok(
            ::core::option::Option::None,
        )
    }
}

fn expand_group(group: &Group, body: &Body) -> TokenStream {
    let krate = &group.krate;
    let mode = group.mode.as_ref().map(|m| match m {
        Mode::Known(row) => {
            let variant = syn::Ident::new(row.variant, Span::call_site());
            quote!(.mode(#krate::GroupMode::#variant))
        }
        Mode::Expr(e) => quote!(.mode(#e)),
    });
    let shield = group.shield.as_ref().map(|s| quote!(.shield(#s)));
    let timeout = group.timeout.as_ref().map(|d| quote!(.timeout(#d)));
    let cancellation_timeout = group
        .cancellation_timeout
        .as_ref()
        .map(|d| quote!(.cancellation_timeout(#d)));
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
            let ty = ty.as_ref().map(|t| quote!(: #t));
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
