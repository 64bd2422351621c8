//! `#[queued]`: calling the function enqueues its body on that function's `queue_call`
//! queue and returns at once; the bodies run one at a time, in call order.
//!
//! Parse ([`Args`]) → validate ([`Args::build`], the signature checks in [`expand`]) →
//! expand ([`expand_fn`], reading only the final [`Config`]).

use proc_macro2::{Span, TokenStream};
use quote::{quote, quote_spanned};
use syn::ext::IdentExt;
use syn::parse::{Parse, ParseStream};
use syn::spanned::Spanned;
use syn::{Expr, ItemFn, Path, ReturnType, Token};

use crate::config::{self, kw, Errors, Slot};

const WHAT: &str = "#[queued]";
const KEYS: &str = "`caller = EXPR`, `crate = path`";
const WHY: &str = "the call runs later, on the queue's thread";

/// The arguments as written, each key at most once.
///
/// ```text
/// args := (arg ("," arg)* ","?)?
/// arg  := "caller" "=" Expr | "crate" "=" Path
/// ```
struct Args {
    caller: Slot<Expr>,
    krate: Slot<Path>,
}

impl Default for Args {
    fn default() -> Self {
        Args {
            caller: Slot::new("caller"),
            krate: Slot::new("crate"),
        }
    }
}

impl Parse for Args {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let mut args = Args::default();
        config::parse_list(input, |input| {
            let lookahead = input.lookahead1();
            if lookahead.peek(kw::caller) {
                let key: kw::caller = input.parse()?;
                input.parse::<Token![=]>()?;
                args.caller.set(key.span, input.parse()?)
            } else if lookahead.peek(Token![crate]) {
                config::parse_crate(input, &mut args.krate)
            } else {
                Err(config::unknown_key(input, lookahead, WHAT, KEYS))
            }
        })?;
        Ok(args)
    }
}

/// What expansion reads.
struct Config {
    /// The caller whose queue runs the calls; `None`: `queue_caller()`.
    caller: Option<Expr>,
    krate: TokenStream,
}

impl Args {
    fn build(self) -> Config {
        Config {
            caller: self.caller.take(),
            krate: config::crate_path(self.krate.take()),
        }
    }
}

pub(crate) fn expand(args: TokenStream, item: TokenStream) -> TokenStream {
    let mut errors = Errors::default();
    let config = config::parse_args::<Args>(args, &mut errors).build();
    let (func, mut errors) =
        match config::parse_fn(&item, errors, WHAT, "a `fn` or `async fn` with a body") {
            Ok(parsed) => parsed,
            Err(tokens) => return tokens,
        };
    let mut sig_errors = Errors::default();
    let checks = config::check_inputs(&func.sig, &config.krate, WHAT, WHY, &mut sig_errors);
    if let ReturnType::Type(_, ty) = &func.sig.output {
        let unit_result = config::result_ok_type(ty).is_some_and(config::is_unit);
        if !config::is_unit(ty) && !unit_result {
            sig_errors.push(syn::Error::new(
                ty.span(),
                format!(
                    "{WHAT} functions return `()` or `Result<(), E>`: a call only enqueues, so \
                     no value comes back (errors are logged); use #[on_thread] to get a \
                     `Pending` of the value"
                ),
            ));
        }
    }
    if !sig_errors.is_empty() {
        errors.append(sig_errors);
        return errors.emit(expand_stub(func));
    }
    errors.emit(expand_fn(&config, func, checks))
}

fn expand_fn(config: &Config, func: ItemFn, checks: Vec<TokenStream>) -> TokenStream {
    let krate = &config.krate;
    let ItemFn {
        attrs,
        vis,
        sig,
        block,
    } = func;
    let name = sig.ident.unraw().to_string();
    let output = &sig.output;
    // The body moves the arguments in, like #[on_thread]; the queue is keyed by this
    // closure's type, so every call of this function (per generic instantiation) shares one.
    let (enqueue, job) = if sig.asyncness.is_some() {
        (
            quote!(#krate::__private::enqueue_async),
            quote!(async move || #output #block),
        )
    } else {
        (
            quote!(#krate::__private::enqueue),
            quote!(move || #output #block),
        )
    };
    let (resolve, target) = match &config.caller {
        Some(expr) => {
            // Resolved first: it may borrow an argument that the body then moves.
            let target = syn::Ident::new("__caller_target", Span::mixed_site());
            let resolve = quote_spanned! {expr.span()=>
                let #target = #krate::__private::Target::into_caller(#expr);
            };
            (resolve, quote!(#target))
        }
        None => (TokenStream::new(), quote!(#krate::queue_caller())),
    };
    let mut outer = sig.clone();
    outer.asyncness = None;
    outer.output = ReturnType::Default;
    quote! {
        #(#attrs)*
        #vis #outer {
            #(#checks)*
            #resolve
            #enqueue(#target, #name, #job)
        }
    }
}

/// What a function with a signature error expands to: a function returning `()` with its
/// body type-checked in place, never queued.
fn expand_stub(func: ItemFn) -> TokenStream {
    let ItemFn {
        attrs,
        vis,
        mut sig,
        block,
    } = func;
    let output = std::mem::replace(&mut sig.output, ReturnType::Default);
    let closure = if sig.asyncness.take().is_some() {
        quote!(async move || #output #block)
    } else {
        quote!(move || #output #block)
    };
    quote! {
        #(#attrs)*
        #vis #sig {
            let _ = #closure;
        }
    }
}
