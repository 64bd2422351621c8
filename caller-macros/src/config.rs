//! What every macro shares: the argument keywords, a key slot that rejects repeats, the
//! `crate = path` override, error recovery, and the signature checks of the function
//! attributes (`#[on_thread]` and `#[queued]` both move their arguments to another thread).

use proc_macro2::{Span, TokenStream};
use quote::{quote, ToTokens};
use syn::parse::{Parse, ParseStream};
use syn::spanned::Spanned;
use syn::{GenericArgument, Path, PathArguments, ReturnType, Token, Type, TypeParamBound};

/// The keys of the macros' arguments.
pub(crate) mod kw {
    syn::custom_keyword!(main);
    syn::custom_keyword!(name);
    syn::custom_keyword!(caller);
    syn::custom_keyword!(mode);
    syn::custom_keyword!(shield);
    syn::custom_keyword!(timeout);
    syn::custom_keyword!(cancellation_timeout);
}

/// A value passed on by a `macro_rules!` `$x:expr` arrives wrapped in an invisible group:
/// look inside, so that `mode = $m` checks the literal as if it were written here.
pub(crate) fn ungroup(expr: syn::Expr) -> syn::Expr {
    match expr {
        syn::Expr::Group(g) => ungroup(*g.expr),
        other => other,
    }
}

/// A function's attributes, split: the outer ones (written before the function) and the
/// inner ones (`#![..]` at the top of its body), which the expansion keeps at the top of the
/// body it generates, as tracing-attributes does.
pub(crate) fn split_attrs(
    attrs: &[syn::Attribute],
) -> (Vec<&syn::Attribute>, Vec<&syn::Attribute>) {
    attrs
        .iter()
        .partition(|a| matches!(a.style, syn::AttrStyle::Outer))
}

/// An expression giving the path of the function being expanded, as `type_name` prints
/// it (`app::db::load`, `app::Db::load`, `<app::Db as app::Store>::load`): a nested
/// marker `fn` is named by its path, from which `__private::fn_name` strips its own name.
pub(crate) fn fn_path(krate: &TokenStream) -> TokenStream {
    let marker = syn::Ident::new("__caller_fn", Span::mixed_site());
    quote!(#krate::__private::fn_name({ fn #marker() {} #marker }))
}

/// One key of a macro's arguments: set at most once.
pub(crate) struct Slot<T> {
    key: &'static str,
    value: Option<(Span, T)>,
}

impl<T> Slot<T> {
    pub(crate) fn new(key: &'static str) -> Self {
        Slot { key, value: None }
    }

    /// Record the value given at `span`; a second one is an error at the repeat.
    pub(crate) fn set(&mut self, span: Span, value: T) -> syn::Result<()> {
        if self.value.is_some() {
            return Err(syn::Error::new(
                span,
                format!("duplicate `{}` key: give each key once", self.key),
            ));
        }
        self.value = Some((span, value));
        Ok(())
    }

    pub(crate) fn span(&self) -> Option<Span> {
        self.value.as_ref().map(|(s, _)| *s)
    }

    pub(crate) fn take(self) -> Option<T> {
        self.value.map(|(_, v)| v)
    }
}

/// The path generated code names the runtime crate by: `::caller`, or the `crate = path`
/// override (for a renamed or re-exported dependency, as in tokio).
pub(crate) fn crate_path(krate: Option<Path>) -> TokenStream {
    match krate {
        Some(path) => path.into_token_stream(),
        None => quote!(::caller),
    }
}

/// Parse `crate = path` after the `crate` token was seen.
pub(crate) fn parse_crate(input: ParseStream<'_>, slot: &mut Slot<Path>) -> syn::Result<()> {
    let key: Token![crate] = input.parse()?;
    input.parse::<Token![=]>()?;
    let path = if input.peek(syn::LitStr) {
        // `crate = "name"`, as tokio also accepts.
        input.parse::<syn::LitStr>()?.parse::<Path>()?
    } else {
        Path::parse_mod_style(input)?
    };
    slot.set(key.span, path)
}

/// Parse `arg ("," arg)* ","?` with `one` parsing each `arg`. A bad `arg` is recorded and
/// skipped up to the next `,`, so that every mistake is reported, each once.
pub(crate) fn parse_list(
    input: ParseStream<'_>,
    mut one: impl FnMut(ParseStream<'_>) -> syn::Result<()>,
) -> syn::Result<()> {
    let mut errors = Errors::default();
    while !input.is_empty() {
        if let Err(e) = one(input) {
            errors.push(e);
            skip_to_comma(input)?;
        }
        if input.is_empty() {
            break;
        }
        if let Err(e) = input.parse::<Token![,]>() {
            errors.push(e);
            skip_to_comma(input)?;
            if !input.is_empty() {
                input.parse::<Token![,]>()?;
            }
        }
    }
    match errors.0 {
        Some(err) => Err(err),
        None => Ok(()),
    }
}

fn skip_to_comma(input: ParseStream<'_>) -> syn::Result<()> {
    while !input.is_empty() && !input.peek(Token![,]) {
        input.parse::<proc_macro2::TokenTree>()?;
    }
    Ok(())
}

/// The error for a token that is not one of `keys`: "unknown key `x`" when it is a word,
/// otherwise the lookahead's own "expected one of" error.
pub(crate) fn unknown_key(
    input: ParseStream<'_>,
    lookahead: syn::parse::Lookahead1<'_>,
    what: &str,
    keys: &str,
) -> syn::Error {
    if let Ok(ident) = input
        .fork()
        .call(<syn::Ident as syn::ext::IdentExt>::parse_any)
    {
        return syn::Error::new(
            ident.span(),
            format!("unknown key `{ident}` for {what}; expected one of: {keys}"),
        );
    }
    let err = lookahead.error();
    syn::Error::new(err.span(), format!("{err}; the keys of {what} are: {keys}"))
}

/// Every error found, reported together so that each mistake gives one message.
#[derive(Default)]
pub(crate) struct Errors(Option<syn::Error>);

impl Errors {
    pub(crate) fn push(&mut self, err: syn::Error) {
        match &mut self.0 {
            Some(all) => all.combine(err),
            None => self.0 = Some(err),
        }
    }

    /// Add every error of `other`.
    pub(crate) fn append(&mut self, other: Errors) {
        if let Some(err) = other.0 {
            self.push(err);
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_none()
    }

    /// `tokens` followed by the errors, so that the item still exists (the IDE keeps
    /// working and nothing else breaks) and the user sees only these errors.
    pub(crate) fn emit(self, mut tokens: TokenStream) -> TokenStream {
        if let Some(err) = self.0 {
            tokens.extend(err.into_compile_error());
        }
        tokens
    }
}

/// Parse the function an attribute is on. On failure the error, saying what the attribute
/// `goes_on`, is emitted after the item unchanged (so the IDE keeps the item).
pub(crate) fn parse_fn(
    item: &TokenStream,
    mut errors: Errors,
    what: &str,
    goes_on: &str,
) -> Result<(syn::ItemFn, Errors), TokenStream> {
    match syn::parse2(item.clone()) {
        Ok(f) => Ok((f, errors)),
        Err(e) => {
            errors.push(syn::Error::new(
                e.span(),
                format!("{what} goes on {goes_on}: {e}"),
            ));
            Err(errors.emit(item.clone()))
        }
    }
}

/// Parse `args` into `A`, or record the error and fall back to `A::default()`.
pub(crate) fn parse_args<A: Parse + Default>(args: TokenStream, errors: &mut Errors) -> A {
    match syn::parse2::<A>(args) {
        Ok(a) => a,
        Err(e) => {
            errors.push(e);
            A::default()
        }
    }
}

/// The declared return type, `()` when there is none.
pub(crate) fn return_type(output: &ReturnType) -> Type {
    match output {
        ReturnType::Default => syn::parse_quote!(()),
        ReturnType::Type(_, ty) => (**ty).clone(),
    }
}

/// For a return type spelled `Result<T, E>` (or an alias `io::Result<T>`,
/// `anyhow::Result<T>`): `T`.
pub(crate) fn result_ok_type(ty: &Type) -> Option<&Type> {
    let Type::Path(p) = ty else { return None };
    if p.qself.is_some() {
        return None;
    }
    let last = p.path.segments.last()?;
    if last.ident != "Result" {
        return None;
    }
    let PathArguments::AngleBracketed(args) = &last.arguments else {
        return None;
    };
    match args.args.first()? {
        GenericArgument::Type(t) => Some(t),
        _ => None,
    }
}

/// Whether `ty` is `()`.
pub(crate) fn is_unit(ty: &Type) -> bool {
    matches!(ty, Type::Tuple(t) if t.elems.is_empty())
        || matches!(ty, Type::Paren(p) if is_unit(&p.elem))
}

/// The part of `ty` that borrows something that may not outlive the call (to point an
/// error at): a reference, or a lifetime other than `'static`. Borrows inside `Fn(&T)`
/// sugar and `fn(&T)` pointers are higher-ranked, so they are fine.
pub(crate) fn borrowed_part(ty: &Type) -> Option<TokenStream> {
    match ty {
        Type::Reference(r) => match &r.lifetime {
            Some(l) if l.ident == "static" => borrowed_part(&r.elem),
            _ => Some(r.to_token_stream()),
        },
        Type::Path(p) => {
            if let Some(q) = &p.qself {
                if let Some(s) = borrowed_part(&q.ty) {
                    return Some(s);
                }
            }
            borrowed_in_path(&p.path)
        }
        Type::Tuple(t) => t.elems.iter().find_map(borrowed_part),
        Type::Array(a) => borrowed_part(&a.elem),
        Type::Slice(s) => borrowed_part(&s.elem),
        Type::Paren(p) => borrowed_part(&p.elem),
        Type::Group(g) => borrowed_part(&g.elem),
        Type::ImplTrait(t) => borrowed_in_bounds(t.bounds.iter()),
        Type::TraitObject(t) => borrowed_in_bounds(t.bounds.iter()),
        _ => None,
    }
}

fn borrowed_in_path(path: &Path) -> Option<TokenStream> {
    path.segments.iter().find_map(|seg| match &seg.arguments {
        PathArguments::AngleBracketed(args) => args.args.iter().find_map(|arg| match arg {
            GenericArgument::Lifetime(l) if l.ident != "static" => Some(l.to_token_stream()),
            GenericArgument::Type(t) => borrowed_part(t),
            GenericArgument::AssocType(a) => borrowed_part(&a.ty),
            _ => None,
        }),
        _ => None,
    })
}

fn borrowed_in_bounds<'a>(
    mut bounds: impl Iterator<Item = &'a TypeParamBound>,
) -> Option<TokenStream> {
    bounds.find_map(|b| match b {
        TypeParamBound::Lifetime(l) if l.ident != "static" => Some(l.to_token_stream()),
        TypeParamBound::Trait(t) => borrowed_in_path(&t.path),
        _ => None,
    })
}

/// Whether `ty` mentions `impl Trait` (it cannot be named in a turbofish then).
pub(crate) fn has_impl_trait(ty: &Type) -> bool {
    struct Finder(bool);
    impl<'ast> syn::visit::Visit<'ast> for Finder {
        fn visit_type_impl_trait(&mut self, _: &'ast syn::TypeImplTrait) {
            self.0 = true;
        }
    }
    let mut f = Finder(false);
    syn::visit::Visit::visit_type(&mut f, ty);
    f.0
}

/// Check that every argument of `sig` can move to another thread, and return the
/// assertions (spanned on each argument's type) that make a non-`Send` one an error in
/// our words at the user's type. `what` names the macro, `why` says why it matters.
pub(crate) fn check_inputs(
    sig: &syn::Signature,
    krate: &TokenStream,
    what: &str,
    why: &str,
    errors: &mut Errors,
) -> Vec<TokenStream> {
    let mut checks = Vec::new();
    for input in &sig.inputs {
        match input {
            syn::FnArg::Receiver(r) => {
                if r.reference.is_some() || borrowed_part(&r.ty).is_some() {
                    let shown = match (&r.reference, &r.mutability) {
                        (Some(_), Some(_)) => "`&mut self`",
                        (Some(_), None) => "`&self`",
                        _ => "a borrowed `self`",
                    };
                    errors.push(syn::Error::new_spanned(
                        r,
                        format!(
                            "{what} methods cannot take {shown}: {why}, so it cannot borrow; \
                             take `self` or `self: Arc<Self>`"
                        ),
                    ));
                } else if r.colon_token.is_some() {
                    let ty = &r.ty;
                    checks.push(quote::quote_spanned! {ty.span()=>
                        #krate::__private::assert_send_arg::<#ty>();
                    });
                } else {
                    checks.push(quote::quote_spanned! {r.self_token.span=>
                        #krate::__private::assert_send_arg::<Self>();
                    });
                }
            }
            syn::FnArg::Typed(pt) => {
                let ty = &*pt.ty;
                if let Some(part) = borrowed_part(ty) {
                    errors.push(syn::Error::new_spanned(
                        part,
                        format!(
                            "{what} arguments cannot borrow: {why}; pass an owned value \
                             (`String` rather than `&str`, a clone, an `Arc`)"
                        ),
                    ));
                } else if !has_impl_trait(ty) {
                    checks.push(quote::quote_spanned! {ty.span()=>
                        #krate::__private::assert_send_arg::<#ty>();
                    });
                } else if let syn::Pat::Ident(p) = &*pt.pat {
                    // `impl Trait` cannot be named: assert on the value instead.
                    let ident = &p.ident;
                    checks.push(quote::quote_spanned! {ty.span()=>
                        #krate::__private::assert_send_arg_val(&#ident);
                    });
                }
            }
        }
    }
    checks
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ty(s: &str) -> Type {
        syn::parse_str(s).expect("a type")
    }

    #[test]
    fn borrowed_part_finds_references_and_lifetimes() {
        for borrowed in [
            "&str",
            "&mut Vec<u8>",
            "&'a str",
            "Cow<'a, str>",
            "Vec<&u8>",
            "(u8, &u8)",
            "[&u8; 2]",
            "Box<dyn Fn(u8) + 'a>",
            "Ref<'_, u8>",
        ] {
            assert!(borrowed_part(&ty(borrowed)).is_some(), "{borrowed}");
        }
        for owned in [
            "String",
            "&'static str",
            "Vec<&'static [u8]>",
            "Box<dyn Fn(&str) -> usize + Send>",
            "impl FnOnce(&str) + Send + 'static",
            "fn(&u8) -> u8",
            "Arc<Self>",
        ] {
            assert!(borrowed_part(&ty(owned)).is_none(), "{owned}");
        }
    }

    #[test]
    fn result_ok_type_reads_results_and_aliases() {
        let ok = |s: &str| result_ok_type(&ty(s)).map(|t| t.to_token_stream().to_string());
        assert_eq!(ok("Result<u8, E>").as_deref(), Some("u8"));
        assert_eq!(
            ok("std::io::Result<Vec<u8>>").as_deref(),
            Some("Vec < u8 >")
        );
        assert_eq!(ok("Result<(), String>").as_deref(), Some("()"));
        assert_eq!(ok("Option<u8>"), None);
        assert_eq!(ok("fmt::Result"), None);
        assert!(is_unit(&ty("()")) && !is_unit(&ty("u8")));
    }
}
