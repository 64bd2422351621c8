//! `#[caller::main]` and `#[caller::test]`: the thread that runs the function becomes a
//! caller for the life of its async body (`Caller::builder().name(..).block_on(..)`).
//!
//! Parse ([`Args`]) → validate ([`Args::build`], the signature checks in [`expand`]) →
//! expand ([`expand_fn`], reading only the final [`Config`]).

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};
use syn::ext::IdentExt;
use syn::parse::ParseStream;
use syn::spanned::Spanned;
use syn::{ItemFn, LitStr, Path, Token};

use crate::config::{self, kw, Errors, Slot};

const KEYS: &str = "`name = \"...\"`, `crate = path`";

/// Which attribute is expanding.
#[derive(Clone, Copy)]
pub(crate) enum Kind {
    Main,
    Test,
}

impl Kind {
    fn what(self) -> &'static str {
        match self {
            Kind::Main => "#[caller::main]",
            Kind::Test => "#[caller::test]",
        }
    }
}

/// The arguments as written, each key at most once.
///
/// ```text
/// args := (arg ("," arg)* ","?)?
/// arg  := "name" "=" LitStr | "crate" "=" Path
/// ```
struct Args {
    kind: Kind,
    name: Slot<LitStr>,
    krate: Slot<Path>,
}

impl Args {
    fn new(kind: Kind) -> Self {
        Args {
            kind,
            name: Slot::new("name"),
            krate: Slot::new("crate"),
        }
    }

    fn parse(kind: Kind, input: ParseStream<'_>) -> syn::Result<Self> {
        let mut args = Args::new(kind);
        config::parse_list(input, |input| {
            let lookahead = input.lookahead1();
            if lookahead.peek(kw::name) {
                let key: kw::name = input.parse()?;
                input.parse::<Token![=]>()?;
                if !input.peek(LitStr) {
                    return Err(input.error("`name` takes a string literal: `name = \"app\"`"));
                }
                args.name.set(key.span, input.parse()?)
            } else if lookahead.peek(Token![crate]) {
                config::parse_crate(input, &mut args.krate)
            } else {
                Err(config::unknown_key(input, lookahead, kind.what(), KEYS))
            }
        })?;
        Ok(args)
    }

    /// The final configuration; `default_name` is the function's name.
    fn build(self, default_name: &str) -> Config {
        let name = match self.name.take() {
            Some(lit) => lit.value(),
            None => match self.kind {
                Kind::Main => "main".to_owned(),
                Kind::Test => default_name.to_owned(),
            },
        };
        Config {
            kind: self.kind,
            name,
            krate: config::crate_path(self.krate.take()),
        }
    }
}

/// What expansion reads.
struct Config {
    kind: Kind,
    /// The entry caller's name.
    name: String,
    krate: TokenStream,
}

pub(crate) fn expand(kind: Kind, args: TokenStream, item: TokenStream) -> TokenStream {
    let what = kind.what();
    let mut errors = Errors::default();
    let args =
        match syn::parse::Parser::parse2(|input: ParseStream<'_>| Args::parse(kind, input), args) {
            Ok(a) => a,
            Err(e) => {
                errors.push(e);
                Args::new(kind)
            }
        };
    let (func, mut errors) = match config::parse_fn(&item, errors, what, "an `async fn`") {
        Ok(parsed) => parsed,
        Err(tokens) => return tokens,
    };
    let config = args.build(&func.sig.ident.unraw().to_string());

    if func.sig.asyncness.is_none() {
        // The body still runs fine inside an async block: expand it normally, so that
        // this is the only error.
        errors.push(syn::Error::new(
            func.sig.fn_token.span,
            format!(
                "{what} needs an `async fn`: its body runs as the async loop of this \
                 thread's caller; write `async fn {}`",
                func.sig.ident
            ),
        ));
    }
    let mut func = func;
    if let Kind::Test = kind {
        if let Some(i) = func.attrs.iter().position(|a| a.path().is_ident("test")) {
            // Reported, and dropped so that the test is not declared twice.
            let attr = func.attrs.remove(i);
            errors.push(syn::Error::new_spanned(
                attr,
                "remove this `#[test]`: #[caller::test] already makes the function a test",
            ));
        }
    }
    if !func.sig.inputs.is_empty() {
        let why = match kind {
            Kind::Main => "the program starts it with nothing to pass",
            Kind::Test => "the test harness calls it with nothing to pass",
        };
        errors.push(syn::Error::new_spanned(
            &func.sig.inputs,
            format!("{what} functions take no arguments: {why}"),
        ));
        return errors.emit(expand_stub(&config, func));
    }
    errors.emit(expand_fn(&config, func))
}

fn test_attr(config: &Config) -> TokenStream {
    match config.kind {
        Kind::Main => TokenStream::new(),
        Kind::Test => quote!(#[::core::prelude::v1::test]),
    }
}

fn expand_fn(config: &Config, func: ItemFn) -> TokenStream {
    let krate = &config.krate;
    let name = &config.name;
    let ItemFn {
        attrs,
        vis,
        mut sig,
        block,
    } = func;
    let block_span = block.span();
    sig.asyncness = None;
    let test = test_attr(config);
    let run = quote_spanned! {block_span=>
        #krate::__private::entry(#krate::Caller::builder().name(#name), async #block)
    };
    let (attrs, inner) = config::split_attrs(&attrs);
    quote! {
        #test
        #(#attrs)*
        #vis #sig {
            #(#inner)*
            #run
        }
    }
}

/// What a function with arguments expands to: the entry without them (so that only the
/// one error shows), its body type-checked in place but never run.
fn expand_stub(config: &Config, func: ItemFn) -> TokenStream {
    let ItemFn {
        attrs,
        vis,
        mut sig,
        block,
    } = func;
    let inputs = std::mem::take(&mut sig.inputs);
    let output = sig.output.clone();
    sig.asyncness = None;
    let test = test_attr(config);
    let (attrs, inner) = config::split_attrs(&attrs);
    quote! {
        #test
        #(#attrs)*
        #vis #sig {
            #(#inner)*
            let _ = async move |#inputs| #output #block;
            ::core::unreachable!()
        }
    }
}
