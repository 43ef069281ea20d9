//! `#[plexspaces_handlers]` on a workflow: the run, signal and query handlers.

use quote::quote;
use syn::{Attribute, FnArg, ImplItem, ItemImpl, LitStr, spanned::Spanned};

use crate::{CHECKED, is_handler_attribute};

/// Which workflow attribute this is, if any.
pub(crate) fn workflow_kind(attribute: &Attribute) -> Option<&'static str> {
    let last = attribute.path().segments.last()?;
    ["run_handler", "signal_handler", "query_handler"].into_iter().find(|kind| last.ident == kind)
}

/// Rewrites a read attribute to `#[path(CHECKED)]`, so it stays in the code (and the user's
/// import of it counts as used) but expands to nothing.
fn mark_checked(attribute: &mut Attribute) {
    let path = attribute.path().clone();
    let checked = syn::Ident::new(CHECKED, attribute.span());
    attribute.meta = syn::Meta::List(syn::MetaList {
        path,
        delimiter: syn::MacroDelimiter::Paren(Default::default()),
        tokens: quote!(#checked),
    });
}

/// A `#[plexspaces_handlers]` block of a workflow: one `#[run_handler]`, any number of
/// `#[signal_handler("name")]` and `#[query_handler("name")]`.
pub(crate) fn expand_workflow(block: &mut ItemImpl) -> syn::Result<proc_macro2::TokenStream> {
    let mut run: Option<syn::Ident> = None;
    let mut signals: Vec<(LitStr, syn::Ident)> = Vec::new();
    let mut queries: Vec<(LitStr, syn::Ident)> = Vec::new();
    let mut errors: Option<syn::Error> = None;
    let mut add_error = |error: syn::Error| match &mut errors {
        Some(all) => all.combine(error),
        None => errors = Some(error),
    };
    for item in &mut block.items {
        let ImplItem::Fn(method) = item else { continue };
        if let Some(attribute) = method.attrs.iter().find(|a| is_handler_attribute(a)) {
            add_error(syn::Error::new(
                attribute.span(),
                "a workflow uses #[run_handler], #[signal_handler(..)] and #[query_handler(..)], not #[handler]",
            ));
            continue;
        }
        let Some(position) = method.attrs.iter().position(|a| workflow_kind(a).is_some()) else {
            continue;
        };
        let attribute = method.attrs[position].clone();
        mark_checked(&mut method.attrs[position]);
        let kind = workflow_kind(&attribute).unwrap_or_default();
        let name = &method.sig.ident;
        if method.sig.asyncness.is_none() {
            add_error(syn::Error::new(
                method.sig.fn_token.span(),
                "a handler must be an `async fn`",
            ));
            continue;
        }
        let receiver_mut = match method.sig.inputs.first() {
            Some(FnArg::Receiver(receiver)) if receiver.reference.is_some() => {
                receiver.mutability.is_some()
            }
            _ => {
                add_error(syn::Error::new(
                    method.sig.ident.span(),
                    "a handler takes `&self` or `&mut self` first",
                ));
                continue;
            }
        };
        match kind {
            "run_handler" => {
                if !receiver_mut {
                    add_error(syn::Error::new(name.span(), "the run handler takes `&mut self`"));
                } else if let Some(first) = &run {
                    add_error(syn::Error::new(
                        name.span(),
                        format!("a workflow has one #[run_handler]; `{first}` is already one"),
                    ));
                } else {
                    run = Some(name.clone());
                }
            }
            "signal_handler" | "query_handler" => {
                let action = match attribute.parse_args::<LitStr>() {
                    Ok(action) if !action.value().is_empty() && action.value() != "run" => action,
                    _ => {
                        add_error(syn::Error::new(
                            attribute.span(),
                            format!(
                                "write the name as a string other than \"run\": #[{kind}(\"name\")]"
                            ),
                        ));
                        continue;
                    }
                };
                let taken =
                    signals.iter().chain(queries.iter()).find(|(a, _)| a.value() == action.value());
                if let Some((_, first)) = taken {
                    add_error(syn::Error::new(
                        action.span(),
                        format!("{:?} is already handled by `{first}`", action.value()),
                    ));
                    continue;
                }
                if kind == "query_handler" && receiver_mut {
                    add_error(syn::Error::new(
                        name.span(),
                        "a query handler reads the state: it takes `&self`",
                    ));
                    continue;
                }
                if kind == "signal_handler" && !receiver_mut {
                    add_error(syn::Error::new(name.span(), "a signal handler takes `&mut self`"));
                    continue;
                }
                if kind == "signal_handler" {
                    signals.push((action, name.clone()))
                } else {
                    queries.push((action, name.clone()))
                }
            }
            _ => {}
        }
    }
    if let Some(errors) = errors {
        return Err(errors);
    }
    let Some(run) = run else {
        return Err(syn::Error::new(block.self_ty.span(), "a workflow needs one #[run_handler]"));
    };
    let self_ty = &block.self_ty;
    let (impl_generics, _, where_clause) = block.generics.split_for_impl();
    let signal_arms = signals.iter().map(|(action, method)| {
        quote! { #action => self.#method(ctx, msg).await.map(drop), }
    });
    let query_arms = queries.iter().map(|(action, method)| {
        quote! { #action => self.#method(ctx, msg).await, }
    });
    let query_names = queries.iter().map(|(action, _)| action);
    let signal_names = signals.iter().map(|(action, _)| action);
    let value_future = crate::handler_future(quote! { ::plexspaces_sdk::Value });
    let unit_future = crate::handler_future(quote! { () });
    let exported = crate::exported(block, quote! { WorkflowServer });
    Ok(quote! {
        #block

        #exported

        impl #impl_generics ::plexspaces_sdk::WorkflowHandlers for #self_ty #where_clause {
            const QUERIES: &'static [&'static str] = &[#(#query_names),*];
            const SIGNALS: &'static [&'static str] = &[#(#signal_names),*];

            fn run<'a>(
                &'a mut self,
                ctx: &'a ::plexspaces_sdk::WorkflowContext<Self>,
                msg: &'a ::plexspaces_sdk::Message,
            ) -> #value_future {
                async move { self.#run(ctx, msg).await }
            }

            fn signal<'a>(
                &'a mut self,
                ctx: &'a ::plexspaces_sdk::ActorContext,
                msg: &'a ::plexspaces_sdk::Message,
            ) -> #unit_future {
                async move {
                    match msg.action() {
                        #(#signal_arms)*
                        _ => ::core::result::Result::Ok(()),
                    }
                }
            }

            fn query<'a>(
                &'a self,
                ctx: &'a ::plexspaces_sdk::ActorContext,
                msg: &'a ::plexspaces_sdk::Message,
            ) -> #value_future {
                async move {
                    match msg.action() {
                        #(#query_arms)*
                        other => ::core::result::Result::Err(
                            ::plexspaces_sdk::BehaviorError::UnknownAction(::std::string::String::from(other)),
                        ),
                    }
                }
            }
        }
    })
}
