//! `#[caller::main]` and `#[caller::test]`: the thread that runs the function becomes a
//! caller for the life of its async body (`Caller::builder().name(..).block_on(..)`).
//! [`expand`] runs the phases; the rest generates the function.

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;
use syn::ItemFn;

use crate::args::Args;
use crate::ast::{self, Entry, Kind};
use crate::errors::Errors;
use crate::expand::{closure, item_fn};
use crate::valid::{self, Verdict};

pub(crate) fn expand(kind: Kind, args: TokenStream, item: TokenStream) -> TokenStream {
    let mut errors = Errors::default();
    let args = Args::parse_attr(kind.spec(), args, &mut errors);
    let (mut func, mut errors) = match ast::parse_fn(&item, errors, kind.spec(), "an `async fn`") {
        Ok(parsed) => parsed,
        Err(tokens) => return tokens,
    };
    let config = Entry::build(kind, args, &func.sig.ident);
    let verdict = valid::entry(kind, &func, &mut errors);
    if let Kind::Test = kind {
        // Reported by validation, and dropped so that the test is not declared twice.
        func.attrs.retain(|a| !a.path().is_ident("test"));
    }
    let tokens = match verdict {
        Verdict::Expand(_) => expand_fn(&config, &func),
        Verdict::Stub => expand_stub(&config, &func),
        Verdict::AsWritten => item,
    };
    errors.emit(tokens)
}

/// The harness's `#[test]`, for `#[caller::test]`.
fn test_attr(config: &Entry) -> TokenStream {
    match config.kind {
        Kind::Main => TokenStream::new(),
        Kind::Test => quote!(#[::core::prelude::v1::test]),
    }
}

fn expand_fn(config: &Entry, func: &ItemFn) -> TokenStream {
    let krate = &config.krate;
    let name = &config.name;
    let block = &func.block;
    let mut sig = func.sig.clone();
    sig.asyncness = None;
    let run = quote_spanned! {block.span()=>
        #krate::__private::entry(#krate::Caller::builder().name(#name), async #block)
    };
    item_fn(test_attr(config), func, &sig, run)
}

/// What a function with arguments expands to: the entry without them (so that only the
/// one error shows), its body type-checked in place but never run.
fn expand_stub(config: &Entry, func: &ItemFn) -> TokenStream {
    let mut sig = func.sig.clone();
    let inputs = std::mem::take(&mut sig.inputs);
    sig.asyncness = None;
    let body = closure(true, quote!(|#inputs|), &sig.output, &func.block);
    let body = quote! {
        let _ = #body;
        ::core::unreachable!()
    };
    item_fn(test_attr(config), func, &sig, body)
}
