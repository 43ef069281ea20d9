//! Attribute macros of the PlexSpaces Rust SDK. Use them through `plexspaces_sdk`, whose
//! documentation shows them at work; errors point at the user's code.

use proc_macro::TokenStream;
mod workflow;

use quote::quote;
use syn::{
    Attribute, FnArg, ImplItem, ImplItemFn, ItemImpl, ItemStruct, LitStr, parse_macro_input,
    spanned::Spanned,
};

/// Marks a struct as the state of a GenServer actor: derives `Default`, so the runtime can
/// build a fresh state for each new actor id. Pair it with `#[plexspaces_handlers]` on an
/// `impl` block of the same type.
#[proc_macro_attribute]
pub fn gen_server_actor(args: TokenStream, item: TokenStream) -> TokenStream {
    if let Some(error) = refuse_arguments("gen_server_actor", args) {
        return error;
    }
    let item = parse_macro_input!(item as ItemStruct);
    actor_state(&item, quote! {})
}

/// Marks a struct as the state of a GenEvent actor: events are fire-and-forget, and one
/// action (event) may have several handlers, which run in declaration order; the first error
/// stops the rest. Derives `Default`.
#[proc_macro_attribute]
pub fn gen_event_actor(args: TokenStream, item: TokenStream) -> TokenStream {
    if let Some(error) = refuse_arguments("gen_event_actor", args) {
        return error;
    }
    let item = parse_macro_input!(item as ItemStruct);
    actor_state(&item, quote! { const EVENTS: bool = true; })
}

/// Marks a struct as the data of a GenFSM actor that starts in state `initial`:
/// `#[gen_fsm_actor(initial = "locked")]`. Handlers say in which states they are valid and
/// where they lead: `#[handler("coin", from = ["locked"], to = "unlocked")]`; a message not
/// valid in the current state is an `invalid_state` error and changes nothing.
#[proc_macro_attribute]
pub fn gen_fsm_actor(args: TokenStream, item: TokenStream) -> TokenStream {
    let args = proc_macro2::TokenStream::from(args);
    let item = parse_macro_input!(item as ItemStruct);
    let initial = match parse_initial(args) {
        Ok(initial) => initial,
        Err(error) => {
            let error = error.to_compile_error();
            return quote! { #error #item }.into();
        }
    };
    actor_state(
        &item,
        quote! { const INITIAL_STATE: ::core::option::Option<&'static str> =
        ::core::option::Option::Some(#initial); },
    )
}

/// The type a generated handler method returns: a `Send` future borrowing for `'a` that
/// yields `Result<#output, BehaviorError>`.
fn handler_future(output: proc_macro2::TokenStream) -> proc_macro2::TokenStream {
    quote! {
        impl ::core::future::Future<
            Output = ::core::result::Result<#output, ::plexspaces_sdk::BehaviorError>,
        > + ::core::marker::Send + 'a
    }
}

fn parse_initial(args: proc_macro2::TokenStream) -> syn::Result<LitStr> {
    let usage = "write the initial state: #[gen_fsm_actor(initial = \"locked\")]";
    let span = args.span();
    let assignment: syn::MetaNameValue =
        syn::parse2(args).map_err(|_| syn::Error::new(span, usage))?;
    if !assignment.path.is_ident("initial") {
        return Err(syn::Error::new(assignment.path.span(), usage));
    }
    match assignment.value {
        syn::Expr::Lit(syn::ExprLit { lit: syn::Lit::Str(state), .. })
            if !state.value().is_empty() =>
        {
            Ok(state)
        }
        other => Err(syn::Error::new(other.span(), usage)),
    }
}

/// The struct with `Default` derived and its `ActorState` impl, which also records whether
/// the state can be checkpointed (it implements `Serialize` and `DeserializeOwned`).
fn actor_state(item: &ItemStruct, body: proc_macro2::TokenStream) -> TokenStream {
    let name = &item.ident;
    let (impl_generics, type_generics, where_clause) = item.generics.split_for_impl();
    // Autoref specialisation: on a concrete type, method resolution picks the probe impl
    // that needs serde when the type has it, and the fallback otherwise.
    let checkpointable = if item.generics.params.is_empty() {
        quote! {
            fn checkpointable() -> bool {
                #[allow(unused_imports)]
                use ::plexspaces_sdk::__private::{Checkpointable as _, NotCheckpointable as _};
                (&&::plexspaces_sdk::__private::Probe::<#name>::new()).checkpointable()
            }

            fn state_json(&self) -> ::core::option::Option<::plexspaces_sdk::Value> {
                #[allow(unused_imports)]
                use ::plexspaces_sdk::__private::{Checkpointable as _, NotCheckpointable as _};
                (&&::plexspaces_sdk::__private::Probe::<#name>::new()).state_json(self)
            }

            fn from_state_json(
                json: ::plexspaces_sdk::Value,
            ) -> ::core::result::Result<Self, ::std::string::String> {
                #[allow(unused_imports)]
                use ::plexspaces_sdk::__private::{Checkpointable as _, NotCheckpointable as _};
                (&&::plexspaces_sdk::__private::Probe::<#name>::new()).read_state_json(json)
            }
        }
    } else {
        quote! {}
    };
    quote! {
        #[derive(::core::default::Default)]
        #item

        impl #impl_generics ::plexspaces_sdk::ActorState for #name #type_generics #where_clause {
            #body
            #checkpointable
        }
    }
    .into()
}

/// Marks a method of a `#[plexspaces_handlers]` impl block as the handler of one action:
/// `#[handler("increment")]`, or `#[handler("*")]` for every action without its own handler.
/// Outside such a block it is an error.
#[proc_macro_attribute]
pub fn handler(args: TokenStream, item: TokenStream) -> TokenStream {
    let item = proc_macro2::TokenStream::from(item);
    if args.to_string() == CHECKED {
        // Left by #[plexspaces_handlers], which has read the action already.
        return item.into();
    }
    // The call site is the attribute itself.
    let error = syn::Error::new(
        proc_macro2::Span::call_site(),
        "#[handler] works only on methods inside an `impl` block marked #[plexspaces_handlers]",
    )
    .to_compile_error();
    quote! { #error #item }.into()
}

/// The run handler of a `#[workflow_actor]`, in a `#[plexspaces_handlers]` block:
/// `async fn run(&mut self, ctx: &WorkflowContext<Self>, msg: &Message) -> Result<Value,
/// BehaviorError>`. Action `run` starts it; one run at a time.
#[proc_macro_attribute]
pub fn run_handler(args: TokenStream, item: TokenStream) -> TokenStream {
    only_inside_handlers("run_handler", args, item)
}

/// A signal handler of a `#[workflow_actor]`: `#[signal_handler("cancel")]`, called on the
/// run's state when the signal is handed over (at the run's next context call).
#[proc_macro_attribute]
pub fn signal_handler(args: TokenStream, item: TokenStream) -> TokenStream {
    only_inside_handlers("signal_handler", args, item)
}

/// A query handler of a `#[workflow_actor]`: `#[query_handler("status")]` on an
/// `async fn(&self, ctx: &ActorContext, msg: &Message)`; it reads the last committed state, also
/// while a run is in progress.
#[proc_macro_attribute]
pub fn query_handler(args: TokenStream, item: TokenStream) -> TokenStream {
    only_inside_handlers("query_handler", args, item)
}

/// Marks a struct as the state of a Workflow actor: derives `Default` and `Clone` (a run
/// works on its own copy; queries read the last committed one). In a wasm guest the state must
/// also derive `Serialize` and `Deserialize`: the host keeps it, and a durable run's start.
#[proc_macro_attribute]
pub fn workflow_actor(args: TokenStream, item: TokenStream) -> TokenStream {
    if let Some(error) = refuse_arguments("workflow_actor", args) {
        return error;
    }
    let mut item = parse_macro_input!(item as ItemStruct);
    item.attrs.insert(0, syn::parse_quote!(#[derive(::core::clone::Clone)]));
    actor_state(&item, quote! {})
}

/// In a wasm guest, which server `export_actors!` serves the type with.
fn exported(block: &ItemImpl, server: proc_macro2::TokenStream) -> proc_macro2::TokenStream {
    let self_ty = &block.self_ty;
    let (impl_generics, _, where_clause) = block.generics.split_for_impl();
    quote! {
        #[cfg(target_family = "wasm")]
        impl #impl_generics ::plexspaces_sdk::guest::Exported for #self_ty #where_clause {
            type Server = ::plexspaces_sdk::guest::#server<Self>;
        }
    }
}

/// The error for arguments given to an attribute that takes none.
fn refuse_arguments(name: &str, args: TokenStream) -> Option<TokenStream> {
    if args.is_empty() {
        return None;
    }
    let args = proc_macro2::TokenStream::from(args);
    let error = syn::Error::new(args.span(), format!("#[{name}] takes no arguments"));
    Some(error.to_compile_error().into())
}

fn only_inside_handlers(name: &str, args: TokenStream, item: TokenStream) -> TokenStream {
    let item = proc_macro2::TokenStream::from(item);
    if args.to_string() == CHECKED {
        return item.into();
    }
    let error = syn::Error::new(
        proc_macro2::Span::call_site(),
        format!(
            "#[{name}] works only on methods inside an `impl` block marked #[plexspaces_handlers]"
        ),
    )
    .to_compile_error();
    quote! { #error #item }.into()
}

/// Turns an `impl` block whose methods carry `#[handler("action")]` into the actor's message
/// dispatch: the message's action picks the method; named handlers take precedence over
/// `#[handler("*")]`; any other action is `BehaviorError::UnknownAction`.
///
/// Each handler is `async fn name(&mut self, ctx: &ActorContext, msg: &Message) ->
/// Result<Value, BehaviorError>`.
#[proc_macro_attribute]
pub fn plexspaces_handlers(args: TokenStream, item: TokenStream) -> TokenStream {
    if let Some(error) = refuse_arguments("plexspaces_handlers", args) {
        return error;
    }
    let mut block = parse_macro_input!(item as ItemImpl);
    match expand_handlers(&mut block) {
        Ok(tokens) => tokens.into(),
        Err(error) => {
            let error = error.to_compile_error();
            quote! { #error #block }.into()
        }
    }
}

struct Handler {
    action: LitStr,
    method: syn::Ident,
    from: Vec<LitStr>,
    to: Option<LitStr>,
}

/// What `#[handler(..)]` says: the action, and for GenFSM actors the states it is valid in
/// and the state it leads to.
struct HandlerArgs {
    action: LitStr,
    from: Vec<LitStr>,
    to: Option<LitStr>,
}

impl syn::parse::Parse for HandlerArgs {
    fn parse(input: syn::parse::ParseStream<'_>) -> syn::Result<Self> {
        let action: LitStr = input.parse()?;
        let mut from = Vec::new();
        let mut to = None;
        while !input.is_empty() {
            input.parse::<syn::Token![,]>()?;
            if input.is_empty() {
                break;
            }
            let key: syn::Ident = input.parse()?;
            input.parse::<syn::Token![=]>()?;
            if key == "from" {
                if input.peek(syn::token::Bracket) {
                    let states;
                    syn::bracketed!(states in input);
                    let list = states.parse_terminated(|s| s.parse::<LitStr>(), syn::Token![,])?;
                    from.extend(list);
                } else {
                    from.push(input.parse()?);
                }
            } else if key == "to" {
                to = Some(input.parse()?);
            } else {
                return Err(syn::Error::new(
                    key.span(),
                    "unknown handler option; expected `from = [\"state\", ..]` or `to = \"state\"`",
                ));
            }
        }
        Ok(Self { action, from, to })
    }
}

fn expand_handlers(block: &mut ItemImpl) -> syn::Result<proc_macro2::TokenStream> {
    let is_workflow = block.items.iter().any(|item| {
        matches!(item, ImplItem::Fn(method) if method.attrs.iter().any(|a| workflow::workflow_kind(a).is_some()))
    });
    if is_workflow {
        return workflow::expand_workflow(block);
    }
    if let Some((_, path, _)) = &block.trait_ {
        return Err(syn::Error::new(
            path.span(),
            "#[plexspaces_handlers] goes on an inherent `impl Type` block, not a trait impl",
        ));
    }
    let mut named: Vec<Handler> = Vec::new();
    let mut wildcard: Option<Handler> = None;
    let mut errors: Option<syn::Error> = None;
    let mut add_error = |error: syn::Error| match &mut errors {
        Some(all) => all.combine(error),
        None => errors = Some(error),
    };
    for item in &mut block.items {
        let ImplItem::Fn(method) = item else { continue };
        let Some(HandlerArgs { action, from, to }) = take_handler_attribute(method, &mut add_error)
        else {
            continue;
        };
        if let Err(error) = check_signature(method) {
            add_error(error);
            continue;
        }
        let handler = Handler { action, method: method.sig.ident.clone(), from, to };
        if handler.action.value() == "*" {
            if let Some(first) = &wildcard {
                add_error(syn::Error::new(
                    handler.action.span(),
                    format!(
                        "a second #[handler(\"*\")]; `{}` already handles every other action",
                        first.method
                    ),
                ));
            } else {
                wildcard = Some(handler);
            }
        } else {
            // Several handlers for one action are for GenEvent actors; a check emitted below
            // refuses them elsewhere.
            named.push(handler);
        }
    }
    if let Some(errors) = errors {
        return Err(errors);
    }
    if named.is_empty() && wildcard.is_none() {
        return Err(syn::Error::new(
            block.self_ty.span(),
            "no handlers: mark at least one method #[handler(\"action\")] or #[handler(\"*\")]",
        ));
    }

    let self_ty = &block.self_ty;
    let (impl_generics, _, where_clause) = block.generics.split_for_impl();
    // Handlers grouped by action, in the order each action first appears.
    let mut groups: Vec<(&LitStr, Vec<&Handler>)> = Vec::new();
    for handler in &named {
        match groups.iter_mut().find(|(action, _)| action.value() == handler.action.value()) {
            Some((_, handlers)) => handlers.push(handler),
            None => groups.push((&handler.action, vec![handler])),
        }
    }
    let mut shared_action_checks = Vec::new();
    for (action, handlers) in &groups {
        let Some(second) = handlers.get(1) else { continue };
        if !block.generics.params.is_empty() {
            return Err(syn::Error::new(
                second.action.span(),
                "several handlers for one action need a non-generic #[gen_event_actor] type",
            ));
        }
        let message = format!(
            "action {:?} already has a handler (`{}`); only a #[gen_event_actor] may have several handlers for one action",
            action.value(),
            handlers[0].method
        );
        let self_ty = &block.self_ty;
        shared_action_checks.push(quote::quote_spanned! { second.action.span() =>
            const _: () = ::core::assert!(
                <#self_ty as ::plexspaces_sdk::ActorState>::EVENTS,
                #message
            );
        });
    }
    let arms = groups.iter().map(|(action, handlers)| {
        let (last, first) =
            handlers.split_last().unwrap_or_else(|| unreachable!("a group has a handler"));
        let first =
            first.iter().map(|Handler { method, .. }| quote! { self.#method(ctx, msg).await?; });
        let last = &last.method;
        quote! { #action => { #(#first)* self.#last(ctx, msg).await } }
    });
    let transitions =
        named.iter().chain(wildcard.iter()).filter(|h| !h.from.is_empty() || h.to.is_some());
    let transitions = transitions.map(|Handler { action, from, to, .. }| {
        let to = match to {
            Some(to) => quote! { ::core::option::Option::Some(#to) },
            None => quote! { ::core::option::Option::None },
        };
        quote! { ::plexspaces_sdk::Transition { action: #action, from: &[#(#from),*], to: #to }, }
    });
    let fallback = match &wildcard {
        Some(Handler { method, .. }) => quote! { _ => self.#method(ctx, msg).await, },
        None => quote! {
            other => ::core::result::Result::Err(
                ::plexspaces_sdk::BehaviorError::UnknownAction(::std::string::String::from(other)),
            ),
        },
    };
    let names = groups.iter().map(|(action, _)| action);
    let has_wildcard = wildcard.is_some();
    let value_future = handler_future(quote! { ::plexspaces_sdk::Value });
    let exported = exported(block, quote! { ClassServer });
    Ok(quote! {
        #block

        #(#shared_action_checks)*

        #exported

        impl #impl_generics ::plexspaces_sdk::Handlers for #self_ty #where_clause {
            const ACTIONS: &'static [&'static str] = &[#(#names),*];
            const WILDCARD: bool = #has_wildcard;
            const TRANSITIONS: &'static [::plexspaces_sdk::Transition] = &[#(#transitions)*];

            fn dispatch<'a>(
                &'a mut self,
                ctx: &'a ::plexspaces_sdk::ActorContext,
                msg: &'a ::plexspaces_sdk::Message,
            ) -> #value_future {
                async move {
                    match msg.action() {
                        #(#arms)*
                        #fallback
                    }
                }
            }
        }
    })
}

/// The argument `#[plexspaces_handlers]` leaves in each `#[handler(..)]` it has read, so the
/// attribute (and the user's import of it) stays in the code but expands to nothing.
const CHECKED: &str = "__plexspaces_handlers_checked";

/// Reads the action of `#[handler(..)]` on `method` and marks the attribute as read, or
/// reports a malformed one.
fn take_handler_attribute(
    method: &mut ImplItemFn,
    add_error: &mut impl FnMut(syn::Error),
) -> Option<HandlerArgs> {
    let position = method.attrs.iter().position(is_handler_attribute)?;
    let attribute: Attribute = method.attrs[position].clone();
    match &mut method.attrs[position].meta {
        syn::Meta::List(list) => {
            let checked = syn::Ident::new(CHECKED, list.tokens.span());
            list.tokens = quote!(#checked);
        }
        // Malformed: reported below; drop it so it is not reported twice.
        _ => drop(method.attrs.remove(position)),
    }
    if let Some(again) = method.attrs.iter().skip(position + 1).find(|a| is_handler_attribute(a)) {
        add_error(syn::Error::new(again.span(), "a method takes one #[handler(..)]"));
    }
    let starts_with_string = match &attribute.meta {
        syn::Meta::List(list) => {
            syn::parse2::<LitStr>(list.tokens.clone().into_iter().take(1).collect()).is_ok()
        }
        _ => false,
    };
    match attribute.parse_args::<HandlerArgs>() {
        Ok(args) if args.action.value().is_empty() => {
            add_error(syn::Error::new(args.action.span(), "the action name must not be empty"));
            None
        }
        Ok(args) => Some(args),
        Err(error) if starts_with_string => {
            add_error(error);
            None
        }
        Err(_) => {
            let span = match &attribute.meta {
                syn::Meta::List(list) if !list.tokens.is_empty() => list.tokens.span(),
                _ => attribute.span(),
            };
            add_error(syn::Error::new(
                span,
                "write the action as a string: #[handler(\"increment\")] or #[handler(\"*\")]",
            ));
            None
        }
    }
}

fn is_handler_attribute(attribute: &Attribute) -> bool {
    attribute.path().segments.last().is_some_and(|segment| segment.ident == "handler")
}

/// A handler is `async fn(&mut self, &ActorContext, &Message) -> Result<Value, BehaviorError>`;
/// the types are checked by the compiler at the call, this checks the shape.
fn check_signature(method: &ImplItemFn) -> syn::Result<()> {
    let signature = &method.sig;
    if signature.asyncness.is_none() {
        return Err(syn::Error::new(signature.fn_token.span(), "a handler must be an `async fn`"));
    }
    let mut inputs = signature.inputs.iter();
    match inputs.next() {
        Some(FnArg::Receiver(receiver))
            if receiver.mutability.is_some() && receiver.reference.is_some() => {}
        Some(other) => {
            return Err(syn::Error::new(other.span(), "a handler takes `&mut self` first"));
        }
        None => {
            return Err(syn::Error::new(signature.span(), "a handler takes `&mut self` first"));
        }
    }
    let rest: Vec<_> = inputs.collect();
    if rest.len() != 2 {
        let span = signature.inputs.span();
        return Err(syn::Error::new(
            span,
            "a handler takes `(&mut self, ctx: &ActorContext, msg: &Message)`",
        ));
    }
    if matches!(signature.output, syn::ReturnType::Default) {
        return Err(syn::Error::new(
            signature.span(),
            "a handler returns `Result<Value, BehaviorError>`",
        ));
    }
    Ok(())
}
