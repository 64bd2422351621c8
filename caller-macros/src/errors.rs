//! How every phase reports a mistake: all of them found, each once, at its token, and the
//! item (or the expression) still emitted with them, so that the IDE keeps working and
//! nothing around the macro breaks as well.

use proc_macro2::TokenStream;
use quote::quote;

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

    /// `tokens` followed by the errors, so that the item still exists and the user sees
    /// only these errors.
    pub(crate) fn emit(self, mut tokens: TokenStream) -> TokenStream {
        if let Some(err) = self.0 {
            tokens.extend(err.into_compile_error());
        }
        tokens
    }

    /// For an expression macro: `{ compile_error!(..); expr }`, the errors and an
    /// expression of the type the macro would have had; `expr` alone without errors.
    pub(crate) fn emit_in_expr(self, expr: TokenStream) -> TokenStream {
        if self.is_empty() {
            return expr;
        }
        let errors = self.emit(TokenStream::new());
        quote!({ #errors #expr })
    }
}
