//! Validation phase: the checks on the annotated function's signature, for each attribute
//! (`async`, `self`, borrowed or non-`Send` arguments, the return type, the state
//! parameter), and the facts expansion needs from it (which `Result` type, which `Send`
//! assertions). Each mistake is reported at its token with its fix; the [`Verdict`] says
//! what can still be generated.

use proc_macro2::{Span, TokenStream};
use quote::ToTokens;
use syn::spanned::Spanned;
use syn::{
    FnArg, GenericArgument, Ident, ItemFn, Path, PathArguments, ReturnType, Signature, Type,
    TypeParamBound,
};

use crate::args::{Spec, ON_THREAD, QUEUED};
use crate::ast::{Kind, StateParam};
use crate::errors::Errors;

/// Why `#[on_thread]`'s arguments cannot borrow.
const ON_THREAD_WHY: &str = "the call runs on another thread, after this function has returned";
/// Why `#[queued]`'s arguments cannot borrow.
const QUEUED_WHY: &str = "the call runs later, on the queue's thread";

/// What a checked function can still expand to.
pub(crate) enum Verdict {
    /// The real expansion, asserting that these arguments are `Send`.
    Expand(Vec<SendCheck>),
    /// A mistake in the signature (reported): a stub with the signature the function
    /// would have had, so that its callers still type-check and show no other error.
    Stub,
    /// Nothing can stand for it (reported): the item as written.
    AsWritten,
}

/// An argument that moves to another thread, to assert `Send` on, at the user's token.
pub(crate) enum SendCheck {
    /// On its type.
    Type(Type, Span),
    /// On its value: an `impl Trait` type cannot be named.
    Value(Ident, Span),
}

/// `#[on_thread]`: owned, `Send` arguments and a nameable, owned return type.
pub(crate) fn on_thread(sig: &Signature, errors: &mut Errors) -> Verdict {
    let mut found = Errors::default();
    let checks = inputs(sig, &ON_THREAD, ON_THREAD_WHY, &mut found);
    let what = ON_THREAD.what;
    if let ReturnType::Type(_, ty) = &sig.output {
        if has_impl_trait(ty) {
            errors.push(syn::Error::new_spanned(
                ty,
                format!(
                    "{what} cannot return `impl Trait`: the value is sent back in a \
                     `Pending<T>`, so name its type (or box it)"
                ),
            ));
            return Verdict::AsWritten;
        }
        if let Some(part) = borrowed_part(ty) {
            found.push(syn::Error::new_spanned(
                part,
                format!("{what} cannot return a borrow: {ON_THREAD_WHY}; return an owned value"),
            ));
        }
    }
    verdict(found, errors, checks)
}

/// `#[queued]`: owned, `Send` arguments and a return type of `()` or `Result<(), E>`.
pub(crate) fn queued(sig: &Signature, errors: &mut Errors) -> Verdict {
    let mut found = Errors::default();
    let checks = inputs(sig, &QUEUED, QUEUED_WHY, &mut found);
    if let ReturnType::Type(_, ty) = &sig.output {
        let unit_result = result_ok_type(ty).is_some_and(is_unit);
        if !is_unit(ty) && !unit_result {
            found.push(syn::Error::new(
                ty.span(),
                format!(
                    "{} functions return `()` or `Result<(), E>`: a call only enqueues, so \
                     no value comes back (errors are logged); use #[on_thread] to get a \
                     `Pending` of the value",
                    QUEUED.what
                ),
            ));
        }
    }
    verdict(found, errors, checks)
}

/// `#[caller::main]` and `#[caller::test]`: an `async fn` without arguments (and, for a
/// test, no `#[test]` of its own, which expansion drops).
pub(crate) fn entry(kind: Kind, func: &ItemFn, errors: &mut Errors) -> Verdict {
    let what = kind.spec().what;
    let sig = &func.sig;
    if sig.asyncness.is_none() {
        // The body still runs fine inside an async block: it expands normally, so that
        // this is the only error.
        errors.push(syn::Error::new(
            sig.fn_token.span,
            format!(
                "{what} needs an `async fn`: its body runs as the async loop of this \
                 thread's caller; write `async fn {}`",
                sig.ident
            ),
        ));
    }
    if let (Kind::Test, Some(attr)) = (kind, test_attr(func)) {
        errors.push(syn::Error::new_spanned(
            attr,
            "remove this `#[test]`: #[caller::test] already makes the function a test",
        ));
    }
    if !sig.inputs.is_empty() {
        let why = match kind {
            Kind::Main => "the program starts it with nothing to pass",
            Kind::Test => "the test harness calls it with nothing to pass",
        };
        errors.push(syn::Error::new_spanned(
            &sig.inputs,
            format!("{what} functions take no arguments: {why}"),
        ));
        return Verdict::Stub;
    }
    Verdict::Expand(Vec::new())
}

/// The user's own `#[test]` on a `#[caller::test]` function.
fn test_attr(func: &ItemFn) -> Option<&syn::Attribute> {
    func.attrs.iter().find(|a| a.path().is_ident("test"))
}

fn verdict(found: Errors, errors: &mut Errors, checks: Vec<SendCheck>) -> Verdict {
    if found.is_empty() {
        return Verdict::Expand(checks);
    }
    errors.append(found);
    Verdict::Stub
}

/// The parameter `state = name` names, checked to be `name: &mut T`, and its position.
pub(crate) fn state_param(sig: &Signature, name: &Ident) -> syn::Result<(usize, StateParam)> {
    let found = sig
        .inputs
        .iter()
        .enumerate()
        .find_map(|(i, input)| match input {
            FnArg::Typed(pt) if matches!(&*pt.pat, syn::Pat::Ident(p) if p.ident == *name) => {
                Some((i, pt))
            }
            _ => None,
        });
    let Some((position, pt)) = found else {
        return Err(syn::Error::new(
            name.span(),
            format!("`state = {name}` names no parameter of this function: add `{name}: &mut T`"),
        ));
    };
    match &*pt.ty {
        Type::Reference(r) if r.mutability.is_some() && r.lifetime.is_none() => {
            let param = StateParam {
                pat: (*pt.pat).clone(),
                ty: (*r.elem).clone(),
            };
            Ok((position, param))
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

/// Check that every argument of `sig` can move to another thread (owned: no borrow, no
/// `&self`), and list the `Send` assertions that make a non-`Send` one an error in our
/// words at the user's type. `why` says why it matters.
fn inputs(sig: &Signature, spec: &Spec, why: &str, errors: &mut Errors) -> Vec<SendCheck> {
    let what = spec.what;
    let mut checks = Vec::new();
    for input in &sig.inputs {
        match input {
            FnArg::Receiver(r) => {
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
                    checks.push(SendCheck::Type((*r.ty).clone(), r.ty.span()));
                } else {
                    let span = r.self_token.span;
                    checks.push(SendCheck::Type(
                        syn::parse_quote_spanned!(span=> Self),
                        span,
                    ));
                }
            }
            FnArg::Typed(pt) => {
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
                    checks.push(SendCheck::Type(ty.clone(), ty.span()));
                } else if let syn::Pat::Ident(p) = &*pt.pat {
                    checks.push(SendCheck::Value(p.ident.clone(), ty.span()));
                }
            }
        }
    }
    checks
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
fn is_unit(ty: &Type) -> bool {
    matches!(ty, Type::Tuple(t) if t.elems.is_empty())
        || matches!(ty, Type::Paren(p) if is_unit(&p.elem))
}

/// The part of `ty` that borrows something that may not outlive the call (to point an
/// error at): a reference, or a lifetime other than `'static`. Borrows inside `Fn(&T)`
/// sugar and `fn(&T)` pointers are higher-ranked, so they are fine.
fn borrowed_part(ty: &Type) -> Option<TokenStream> {
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
fn has_impl_trait(ty: &Type) -> bool {
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
