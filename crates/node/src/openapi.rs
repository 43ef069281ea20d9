//! The OpenAPI 3 document of each HTTP port, served at `/api/v1/openapi.json`.

use serde_json::{Value, json};

pub(crate) fn problem_responses(codes: &[u16]) -> Value {
    let mut responses = serde_json::Map::new();
    for code in codes {
        responses.insert(
            code.to_string(),
            json!({
                "description": "an error from the catalogue",
                "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
            }),
        );
    }
    Value::Object(responses)
}

pub(crate) fn merge(mut base: Value, extra: Value) -> Value {
    if let (Some(base), Value::Object(extra)) = (base.as_object_mut(), extra) {
        base.extend(extra);
    }
    base
}

/// A required JSON request body of `schema`.
pub(crate) fn body(schema: Value) -> Value {
    json!({"required": true, "content": {"application/json": {"schema": schema}}})
}

/// A JSON answer of `schema`.
pub(crate) fn answer(schema: Value) -> Value {
    json!({"description": "done", "content": {"application/json": {"schema": schema}}})
}

/// A JSON object with these properties and no others.
pub(crate) fn object(required: &[&str], properties: Value) -> Value {
    json!({"type": "object", "required": required, "additionalProperties": false, "properties": properties})
}

pub(crate) fn segment(name: &str, description: &str) -> Value {
    json!({
        "name": name, "in": "path", "required": true, "description": description,
        "schema": {"type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$"}
    })
}

fn actor_id_param() -> Value {
    json!({
        "name": "actor_id", "in": "path", "required": true,
        "description": "one virtual actor of the type",
        "schema": {"type": "string", "minLength": 1, "maxLength": 256, "pattern": "^[^/\\u0000-\\u001f\\u007f-\\u009f]+$"}
    })
}

/// The tenant, namespace and actor type; the type is one this node serves.
fn type_params(types: &[String]) -> Vec<Value> {
    vec![
        segment("tenant", "the tenant"),
        segment("namespace", "the namespace"),
        json!({
            "name": "actor_type", "in": "path", "required": true,
            "description": "an actor type this node serves",
            "schema": {"type": "string", "enum": types}
        }),
    ]
}

fn components() -> Value {
    json!({
        "schemas": {
            "Problem": {
                "type": "object",
                "required": ["type", "title", "status", "code", "detail"],
                "properties": {
                    "type": {"type": "string"},
                    "title": {"type": "string"},
                    "status": {"type": "integer"},
                    "code": {"type": "string", "description": "the stable error code"},
                    "detail": {"type": "string"},
                    "facet": {"type": "string", "description": "the facet that refused the message"}
                }
            },
            "Accepted": {
                "type": "object",
                "required": ["message_id", "duplicate"],
                "properties": {"message_id": {"type": "string"}, "duplicate": {"type": "boolean"}}
            }
        },
        "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}
    })
}

fn health_paths() -> Value {
    json!({
        "/healthz": {"get": {"summary": "liveness", "operationId": "healthz",
            "responses": {"200": {"description": "the node is up", "content": {"application/json": {"schema": {"type": "object"}}}}}}},
        "/readyz": {"get": {"summary": "readiness", "operationId": "readyz",
            "responses": merge(json!({"200": {"description": "the node takes requests", "content": {"application/json": {"schema": {"type": "object"}}}}}), problem_responses(&[503]))}},
        "/api/v1/openapi.json": {"get": {"summary": "this document", "operationId": "openapi",
            "responses": {"200": {"description": "OpenAPI 3 document", "content": {"application/json": {"schema": {"type": "object"}}}}}}}
    })
}

fn invoke_operations(types: &[String], with_id: bool, max_timeout_ms: u64) -> Value {
    let mut params = type_params(types);
    if with_id {
        params.push(actor_id_param());
    }
    let invocation = json!({"name": "invocation", "in": "query", "required": false,
        "description": "call: wait for the reply; tell (the default on POST): queue it",
        "schema": {"type": "string", "enum": ["call", "tell"]}});
    let timeout = json!({"name": "timeout_ms", "in": "query", "required": false,
        "description": "how long a call waits (default: the node's ask_timeout_ms, 30000)",
        "schema": {"type": "integer", "minimum": 1, "maximum": max_timeout_ms}});
    let idempotency = json!({"name": "Idempotency-Key", "in": "header", "required": false,
        "description": "a tell with a key seen within the window is not delivered again",
        "schema": {"type": "string", "maxLength": 256, "pattern": "^[\\x21-\\x7e]*$"}});
    let suffix = if with_id { "_actor" } else { "" };
    let errors = problem_responses(&[400, 401, 403, 404, 408, 409, 410, 413, 415, 500, 503, 504]);
    json!({
        "parameters": params,
        "post": {
            "summary": "tell the actor (202), or call it with ?invocation=call (200 with the reply)",
            "operationId": format!("invoke_post{suffix}"),
            "parameters": [invocation, timeout, idempotency],
            "requestBody": {"required": false, "description": "any JSON, delivered untouched; an object's string `action` field picks the handler",
                "content": {"application/json": {"schema": {"anyOf": [
                    {"type": "object", "properties": {"action": {"type": "string", "nullable": true}}, "additionalProperties": true},
                    {"not": {"type": "object"}}
                ]}}}},
            "responses": merge(json!({
                "200": {"description": "the actor's reply", "content": {"application/json": {"schema": {}}}},
                "202": {"description": "queued", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Accepted"}}}}
            }), errors.clone())
        },
        "get": {
            "summary": "call the actor with the query parameters as the payload",
            "operationId": format!("invoke_get{suffix}"),
            "parameters": [invocation, timeout, {"name": "action", "in": "query", "required": false, "schema": {"type": "string"}}],
            "responses": merge(json!({
                "200": {"description": "the actor's reply", "content": {"application/json": {"schema": {}}}},
                "202": {"description": "queued (invocation=tell)", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Accepted"}}}}
            }), errors)
        }
    })
}

fn document(title: &str, paths: Value) -> Value {
    json!({
        "openapi": "3.0.3",
        "info": {"title": title, "version": env!("CARGO_PKG_VERSION")},
        "paths": merge(health_paths(), paths),
        "components": components(),
        "security": [{}, {"bearer": []}]
    })
}

/// The invoke port's document; waits are limited to `max_timeout_ms` (the node's
/// `max_ask_timeout_ms`).
pub(crate) fn invoke(types: &[String], max_timeout_ms: u64) -> Value {
    let mut document = document(
        "PlexSpaces invoke API",
        json!({
            "/api/v1/actors/{tenant}/{namespace}/{actor_type}": invoke_operations(types, false, max_timeout_ms),
            "/api/v1/actors/{tenant}/{namespace}/{actor_type}/{actor_id}": invoke_operations(types, true, max_timeout_ms),
        }),
    );
    if let Some(paths) = document["paths"].as_object_mut() {
        paths.extend(coordination_paths(max_timeout_ms));
        paths.extend(pool_paths(false, max_timeout_ms));
        paths.extend(channel_paths(max_timeout_ms));
        paths.extend(crate::openapi_registry_blobs::registry_paths());
        paths.extend(crate::openapi_registry_blobs::blob_paths());
    }
    document
}

/// The channels: queues and topics.
fn channel_paths(max_timeout_ms: u64) -> serde_json::Map<String, Value> {
    use plexspaces_storage::channels::{MAX_CAPACITY, MAX_RECEIVE, MAX_VISIBILITY_MS};
    let scope = vec![segment("tenant", "the tenant"), segment("namespace", "the namespace")];
    let name = json!({"type": "string", "pattern": "^[A-Za-z0-9_.-]{1,128}$"});
    let mut with_name = scope.clone();
    with_name.push(json!({"name": "name", "in": "path", "required": true,
        "description": "the channel (1 to 128 of A-Z a-z 0-9 _ . -)", "schema": name.clone()}));
    let flag = |field: &str| json!({"type": "object", "required": [field], "properties": {field: {"type": "boolean"}}});
    let timeout = json!({"type": "integer", "minimum": 0, "maximum": max_timeout_ms.min(u64::from(u32::MAX))});
    let ms = json!({"type": "integer", "minimum": 0, "maximum": MAX_VISIBILITY_MS});
    let receipt = json!({"type": "string", "pattern": "^([A-Za-z0-9_.-]{1,128}/)?[0-9]{1,19}\\.[0-9]{1,9}$",
        "description": "a delivery's receipt, as it came"});
    let segment = "[A-Za-z0-9][A-Za-z0-9_.-]{0,127}";
    let actor = json!({"type": "string", "pattern": format!("^({segment}/)?{segment}/{segment}$"),
        "description": "type/key or namespace/type/key"});
    let queue = json!({"type": "object", "required": ["subscription", "ready", "in_flight", "acked", "redelivered"],
        "properties": {"subscription": {"type": "string", "nullable": true}, "ready": {"type": "integer"},
            "in_flight": {"type": "integer"}, "acked": {"type": "integer"}, "redelivered": {"type": "integer"}}});
    let consumer = json!({"type": "object", "required": ["actor", "action", "subscription"],
        "properties": {"actor": {"type": "string"}, "action": {"type": "string"}, "subscription": {"type": "string", "nullable": true}}});
    let info = json!({"type": "object",
        "required": ["name", "kind", "capacity", "visibility_timeout_ms", "closed", "sent", "queues", "consumers"],
        "properties": {"name": {"type": "string"}, "kind": {"type": "string", "enum": ["queue", "topic"]},
            "capacity": {"type": "integer"}, "visibility_timeout_ms": {"type": "integer"}, "closed": {"type": "boolean"},
            "sent": {"type": "integer"}, "queues": {"type": "array", "items": queue},
            "consumers": {"type": "array", "items": consumer}}});
    let delivery = json!({"type": "object", "required": ["receipt", "data", "attempt", "sent_at_ms"],
        "properties": {"receipt": {"type": "string"}, "data": {}, "attempt": {"type": "integer"}, "sent_at_ms": {"type": "integer"}}});
    let errors = |codes: &[u16]| problem_responses(codes);
    let operation = |summary: &str, id: &str, request: Value, reply: Value, codes: &[u16]| {
        json!({"parameters": with_name.clone(), "post": {"summary": summary, "operationId": id,
            "requestBody": body(request), "responses": merge(json!({"200": answer(reply)}), errors(codes))}})
    };
    let mut paths = json!({
        "/api/v1/channels/{tenant}/{namespace}": {
            "parameters": scope,
            "get": {"summary": "the channels of a namespace, with their queues and consumers", "operationId": "list_channels",
                "responses": merge(json!({"200": answer(json!({"type": "object", "required": ["channels"],
                    "properties": {"channels": {"type": "array", "items": info.clone()}}}))}), errors(&[400, 401]))}
        },
        "/api/v1/channels/{tenant}/{namespace}/{name}": {
            "parameters": with_name.clone(),
            "put": {"summary": "create a channel (the same config again is 200, another 409)", "operationId": "create_channel",
                "requestBody": body(object(&[], json!({"kind": {"type": "string", "enum": ["queue", "topic"]},
                    "capacity": {"type": "integer", "minimum": 0, "maximum": MAX_CAPACITY, "description": "0: 10000"},
                    "visibility_timeout_ms": {"type": "integer", "minimum": 0, "maximum": MAX_VISIBILITY_MS, "description": "0: 30000"}}))),
                "responses": merge(json!({"201": answer(flag("created")), "200": answer(flag("created"))}),
                    errors(&[400, 401, 409, 413, 415]))},
            "get": {"summary": "a channel, its queues and consumers", "operationId": "get_channel",
                "responses": merge(json!({"200": answer(info)}), errors(&[400, 401, 404]))},
            "delete": {"summary": "delete a channel with its messages and consumers", "operationId": "delete_channel",
                "responses": merge(json!({"200": answer(flag("deleted"))}), errors(&[400, 401]))}
        },
    });
    let operations = [
        (
            "close",
            operation(
                "stop the channel's intake; what it holds is still delivered",
                "close_channel",
                object(&[], json!({})),
                flag("closed"),
                &[400, 401, 404, 413, 415],
            ),
        ),
        (
            "send",
            operation(
                "send a message (JSON); a full channel waits up to timeout_ms for room, then 429 channel_full",
                "channel_send",
                object(&["data"], json!({"data": {}, "timeout_ms": timeout.clone()})),
                json!({"type": "object", "required": ["queued"], "properties": {"queued": {"type": "integer"}}}),
                &[400, 401, 404, 409, 413, 415, 429, 503],
            ),
        ),
        (
            "receive",
            operation(
                "up to max messages, each invisible to others for the visibility timeout; waits up to timeout_ms for one",
                "channel_receive",
                object(
                    &[],
                    json!({"subscription": {"type": "string"}, "max": {"type": "integer", "minimum": 0, "maximum": MAX_RECEIVE},
                "timeout_ms": timeout, "visibility_timeout_ms": ms.clone()}),
                ),
                json!({"type": "object", "required": ["deliveries"], "properties": {"deliveries": {"type": "array", "items": delivery}}}),
                &[400, 401, 404, 413, 415],
            ),
        ),
        (
            "ack",
            operation(
                "acknowledge a delivery: the message is gone",
                "channel_ack",
                object(&["receipt"], json!({"receipt": receipt.clone()})),
                flag("acked"),
                &[400, 401, 404, 413, 415],
            ),
        ),
        (
            "nack",
            operation(
                "give a delivery back: deliverable again after delay_ms",
                "channel_nack",
                object(&["receipt"], json!({"receipt": receipt, "delay_ms": ms})),
                flag("nacked"),
                &[400, 401, 404, 413, 415],
            ),
        ),
        (
            "subscribe",
            operation(
                "add a subscription to a topic",
                "channel_subscribe",
                object(&["subscription"], json!({"subscription": name.clone()})),
                flag("subscribed"),
                &[400, 401, 404, 413, 415],
            ),
        ),
        (
            "unsubscribe",
            operation(
                "remove a subscription with its messages",
                "channel_unsubscribe",
                object(&["subscription"], json!({"subscription": name.clone()})),
                flag("unsubscribed"),
                &[400, 401, 404, 413, 415],
            ),
        ),
        (
            "consume",
            operation(
                "have the node hand an actor the channel's messages, one at a time",
                "channel_consume",
                object(
                    &["actor", "action"],
                    json!({"actor": actor.clone(),
                "action": {"type": "string", "minLength": 1, "maxLength": 128}, "subscription": {"type": "string"}}),
                ),
                flag("added"),
                &[400, 401, 404, 413, 415],
            ),
        ),
        (
            "stop-consuming",
            operation(
                "end an actor's consumption of the channel",
                "channel_stop_consuming",
                object(&["actor"], json!({"actor": actor})),
                flag("removed"),
                &[400, 401, 404, 413, 415],
            ),
        ),
    ];
    if let Some(map) = paths.as_object_mut() {
        for (segment, path) in operations {
            map.insert(
                format!("/api/v1/channels/{{tenant}}/{{namespace}}/{{name}}/{segment}"),
                path,
            );
        }
    }
    match paths {
        Value::Object(map) => map,
        _ => serde_json::Map::new(),
    }
}

/// The KV store and the tuple space.
fn coordination_paths(max_timeout_ms: u64) -> serde_json::Map<String, Value> {
    let scope = [segment("tenant", "the tenant"), segment("namespace", "the namespace")];
    let key = json!({"name": "key", "in": "path", "required": true, "description": "the key (1 to 256 characters)",
        "schema": {"type": "string", "minLength": 1, "maxLength": 256}});
    let mut with_key = scope.to_vec();
    with_key.push(key);
    let entry = json!({"type": "object", "required": ["key", "value", "expires_at_ms"],
        "properties": {"key": {"type": "string"}, "value": {"type": "string"},
            "expires_at_ms": {"type": "integer", "nullable": true}}});
    let errors = problem_responses(&[400, 401, 413, 415]);
    // A time to live of at most 10 years; a tuple's lease of at most one.
    let ms = json!({"type": "integer", "minimum": 0, "maximum": 315_360_000_000_u64});
    let lease = json!({"type": "integer", "minimum": 0, "maximum": 31_536_000_000_u64});
    let timeout = json!({"type": "integer", "minimum": 0, "maximum": max_timeout_ms.min(u64::from(u32::MAX))});
    let tuple = json!({"type": "array", "minItems": 1, "maxItems": 64,
        "description": "in a pattern null matches any value and {\"$type\": \"string\"} (int, number, bool, array, object) any value of that kind",
        "items": {}});
    let find = json!({"type": "object", "required": ["pattern"], "additionalProperties": false,
        "properties": {"pattern": tuple, "timeout_ms": timeout}});
    let mut paths = json!({
        "/api/v1/kv/{tenant}/{namespace}": {
            "parameters": scope,
            "get": {"summary": "one page of the entries whose keys start with `prefix`, in key order", "operationId": "kv_list",
                "parameters": [
                    {"name": "prefix", "in": "query", "required": false, "schema": {"type": "string", "maxLength": 256}},
                    {"name": "after", "in": "query", "required": false, "description": "the previous page's next_after", "schema": {"type": "string"}},
                    {"name": "limit", "in": "query", "required": false, "schema": {"type": "integer", "minimum": 0, "maximum": 10000}}
                ],
                "responses": merge(json!({"200": answer(json!({"type": "object", "required": ["entries", "next_after"],
                    "properties": {"entries": {"type": "array", "items": entry}, "next_after": {"type": "string", "nullable": true}}}))}), errors.clone())}
        },
        "/api/v1/kv/{tenant}/{namespace}/{key}": {
            "parameters": with_key,
            "get": {"summary": "the value under a key", "operationId": "kv_get",
                "responses": merge(json!({"200": answer(entry)}), problem_responses(&[400, 401, 404]))},
            "put": {"summary": "store a value (durable when answered, on SQLite)", "operationId": "kv_put",
                "requestBody": body(json!({"type": "object", "required": ["value"], "additionalProperties": false,
                    "properties": {"value": {"type": "string"}, "ttl_ms": ms}})),
                "responses": merge(json!({"204": {"description": "stored"}}), errors.clone())},
            "delete": {"summary": "remove a key", "operationId": "kv_delete",
                "responses": merge(json!({"200": answer(json!({"type": "object", "required": ["deleted"], "properties": {"deleted": {"type": "boolean"}}}))}), problem_responses(&[400, 401]))}
        },
        "/api/v1/kv/{tenant}/{namespace}/{key}/compare-and-swap": {
            "parameters": with_key,
            "post": {"summary": "store `value` (delete when null) only if the key holds `expected` (null: absent)", "operationId": "kv_compare_and_swap",
                "requestBody": body(json!({"type": "object", "additionalProperties": false,
                    "properties": {"expected": {"type": "string", "nullable": true}, "value": {"type": "string", "nullable": true}, "ttl_ms": ms}})),
                "responses": merge(json!({"200": answer(json!({"type": "object", "required": ["swapped"], "properties": {"swapped": {"type": "boolean"}}}))}), errors.clone())}
        },
        "/api/v1/tuples/{tenant}/{namespace}": {
            "parameters": scope,
            "post": {"summary": "write a tuple (a JSON array)", "operationId": "tuple_write",
                "requestBody": body(json!({"type": "object", "required": ["tuple"], "additionalProperties": false,
                    "properties": {"tuple": tuple, "lease_ms": lease}})),
                "responses": merge(json!({"204": {"description": "written"}}), errors.clone())}
        }
    });
    let found = json!({"type": "object", "required": ["tuple"], "properties": {"tuple": {"type": "array", "items": {}, "nullable": true}}});
    for (operation, summary, request, response) in [
        (
            "read",
            "the oldest matching tuple, left in the space; waits up to timeout_ms",
            find.clone(),
            found.clone(),
        ),
        ("take", "the oldest matching tuple, removed; waits up to timeout_ms", find.clone(), found),
        (
            "count",
            "how many tuples match",
            json!({"type": "object", "required": ["pattern"], "additionalProperties": false,
            "properties": {"pattern": tuple}}),
            json!({"type": "object", "required": ["count"], "properties": {"count": {"type": "integer"}}}),
        ),
        (
            "scan",
            "matching tuples, oldest first",
            json!({"type": "object", "required": ["pattern"], "additionalProperties": false,
            "properties": {"pattern": tuple, "limit": {"type": "integer", "minimum": 0, "maximum": 10000}}}),
            json!({"type": "object", "required": ["tuples"], "properties": {"tuples": {"type": "array", "items": {"type": "array", "items": {}}}}}),
        ),
    ] {
        paths[format!("/api/v1/tuples/{{tenant}}/{{namespace}}/{operation}")] = json!({
            "parameters": scope,
            "post": {"summary": summary, "operationId": format!("tuple_{operation}"),
                "requestBody": body(request),
                "responses": merge(json!({"200": answer(response)}), errors.clone())}
        });
    }
    match paths {
        Value::Object(mut paths) => {
            paths.extend(lock_and_group_paths(max_timeout_ms));
            paths
        }
        _ => serde_json::Map::new(),
    }
}

/// Locks and process groups.
fn lock_and_group_paths(max_timeout_ms: u64) -> serde_json::Map<String, Value> {
    let named = |name: &str, description: &str| {
        vec![
            segment("tenant", "the tenant"),
            segment("namespace", "the namespace"),
            json!({"name": name, "in": "path", "required": true, "description": description,
                "schema": {"type": "string", "minLength": 1, "maxLength": 256}}),
        ]
    };
    let errors = problem_responses(&[400, 401, 413, 415]);
    let version = json!({"type": "string", "pattern": "^[0-9]{1,19}$", "description": "the grant's fencing token"});
    let lease = json!({"type": "integer", "minimum": 1, "maximum": 86_400_000});
    let grant = json!({"type": "object", "nullable": true, "required": ["name", "version", "holder", "metadata", "expires_at_ms"],
        "properties": {"name": {"type": "string"}, "version": {"type": "string"}, "holder": {"type": "string"},
            "metadata": {"type": "string"}, "expires_at_ms": {"type": "integer"}}});
    let granted = json!({"type": "object", "required": ["grant"], "properties": {"grant": grant}});
    // `type`, `type/key` or `namespace/type/key`, as the node checks them.
    let member = json!({"type": "string",
        "pattern": "^([A-Za-z0-9][A-Za-z0-9_.-]{0,127}/)?[A-Za-z0-9][A-Za-z0-9_.-]{0,127}(/[^/\\u0000-\\u001f\\u007f-\\u009f]{1,256})?$"});
    let topic = json!({"type": "string", "minLength": 1, "maxLength": 256, "nullable": true});
    let membership = json!({"type": "object", "required": ["member"], "additionalProperties": false,
        "properties": {"member": member, "topic": topic}});
    let paths = json!({
        "/api/v1/locks/{tenant}/{namespace}/{name}": {
            "parameters": named("name", "the lock"),
            "get": {"summary": "the lock's current grant (null when free)", "operationId": "lock_get",
                "responses": merge(json!({"200": answer(granted.clone())}), problem_responses(&[400, 401]))}
        },
        "/api/v1/locks/{tenant}/{namespace}/{name}/acquire": {
            "parameters": named("name", "the lock"),
            "post": {"summary": "take the lock (grant null: another holder kept it for timeout_ms); the holder acquiring again renews it", "operationId": "lock_acquire",
                "requestBody": body(json!({"type": "object", "required": ["holder", "lease_ms"], "additionalProperties": false,
                    "properties": {"holder": {"type": "string", "minLength": 1}, "metadata": {"type": "string"}, "lease_ms": lease,
                        "timeout_ms": {"type": "integer", "minimum": 0, "maximum": max_timeout_ms.min(u64::from(u32::MAX))}}})),
                "responses": merge(json!({"200": answer(granted.clone())}), errors.clone())}
        },
        "/api/v1/locks/{tenant}/{namespace}/{name}/renew": {
            "parameters": named("name", "the lock"),
            "post": {"summary": "extend a grant's lease (409 invalid_state when it no longer holds)", "operationId": "lock_renew",
                "requestBody": body(json!({"type": "object", "required": ["holder", "version", "lease_ms"], "additionalProperties": false,
                    "properties": {"holder": {"type": "string", "minLength": 1}, "version": version, "lease_ms": lease}})),
                "responses": merge(json!({"200": answer(granted)}), problem_responses(&[400, 401, 409, 413, 415]))}
        },
        "/api/v1/locks/{tenant}/{namespace}/{name}/release": {
            "parameters": named("name", "the lock"),
            "post": {"summary": "release a grant; safe to repeat", "operationId": "lock_release",
                "requestBody": body(json!({"type": "object", "required": ["version"], "additionalProperties": false,
                    "properties": {"version": version}})),
                "responses": merge(json!({"200": answer(json!({"type": "object", "required": ["released"], "properties": {"released": {"type": "boolean"}}}))}), errors.clone())}
        },
        "/api/v1/groups/{tenant}/{namespace}": {
            "parameters": [segment("tenant", "the tenant"), segment("namespace", "the namespace")],
            "get": {"summary": "the namespace's groups and their sizes", "operationId": "group_list",
                "responses": merge(json!({"200": answer(json!({"type": "object", "required": ["groups"], "properties": {"groups": {"type": "array", "items": {"type": "object"}}}}))}), problem_responses(&[400, 401]))}
        },
        "/api/v1/groups/{tenant}/{namespace}/{group}": {
            "parameters": named("group", "the group"),
            "get": {"summary": "the group's members, as namespace/type/key", "operationId": "group_members",
                "responses": merge(json!({"200": answer(json!({"type": "object", "required": ["members"], "properties": {"members": {"type": "array", "items": {"type": "string"}}}}))}), problem_responses(&[400, 401]))}
        },
        "/api/v1/groups/{tenant}/{namespace}/{group}/join": {
            "parameters": named("group", "the group"),
            "post": {"summary": "add an actor to the group, or to one of its topics", "operationId": "group_join",
                "requestBody": body(membership.clone()),
                "responses": merge(json!({"200": answer(json!({"type": "object", "required": ["joined"], "properties": {"joined": {"type": "boolean"}}}))}), errors.clone())}
        },
        "/api/v1/groups/{tenant}/{namespace}/{group}/leave": {
            "parameters": named("group", "the group"),
            "post": {"summary": "take an actor out of the group (or of one topic)", "operationId": "group_leave",
                "requestBody": body(membership),
                "responses": merge(json!({"200": answer(json!({"type": "object", "required": ["left"], "properties": {"left": {"type": "boolean"}}}))}), errors.clone())}
        },
        "/api/v1/groups/{tenant}/{namespace}/{group}/publish": {
            "parameters": named("group", "the group"),
            "post": {"summary": "send {action: pg_message, group, topic, data, publisher: null} once to each member", "operationId": "group_publish",
                "requestBody": body(json!({"type": "object", "required": ["data"], "additionalProperties": false,
                    "properties": {"data": {}, "topic": topic}})),
                "responses": merge(json!({"200": answer(json!({"type": "object", "required": ["sent"], "properties": {"sent": {"type": "integer"}}}))}), errors)}
        }
    });
    match paths {
        Value::Object(paths) => paths,
        _ => serde_json::Map::new(),
    }
}

/// The admin port's document.
pub(crate) fn admin(types: &[String]) -> Value {
    let mut with_id = type_params(types);
    with_id.push(actor_id_param());
    let json_object = json!({"application/json": {"schema": {"type": "object"}}});
    let mut document = document(
        "PlexSpaces admin API",
        json!({
            "/api/v1/types": {"get": {"summary": "the registered actor types", "operationId": "list_types",
                "responses": merge(json!({"200": {"description": "types", "content": json_object}}), problem_responses(&[401]))}},
            "/api/v1/status": {"get": {"summary": "the node's status", "operationId": "status",
                "responses": merge(json!({"200": {"description": "status", "content": json_object}}), problem_responses(&[401]))}},
            "/api/v1/actors/{tenant}/{namespace}/{actor_type}": {
                "parameters": type_params(types),
                "get": {"summary": "the actors of a type on this node, with their lifecycle state", "operationId": "list_actors",
                    "responses": merge(json!({"200": {"description": "actors", "content": json_object}}), problem_responses(&[400, 401, 404]))}
            },
            "/api/v1/actors/{tenant}/{namespace}/{actor_type}/{actor_id}": {
                "parameters": with_id.clone(),
                "delete": {"summary": "stop the actor for good and delete its state", "operationId": "delete_actor",
                    "responses": merge(json!({"204": {"description": "deleted"}}), problem_responses(&[400, 401, 404]))}
            },
            "/api/v1/actors/{tenant}/{namespace}/{actor_type}/{actor_id}/state": {
                "parameters": with_id,
                "get": {"summary": "the actor's state", "operationId": "get_state",
                    "responses": merge(json!({"200": {"description": "the state as JSON", "content": {"application/json": {"schema": {}}}}}), problem_responses(&[400, 401, 404, 410, 504]))}
            }
        }),
    );
    if let Some(paths) = document["paths"].as_object_mut() {
        paths.extend(deployment_paths());
        paths.extend(pool_paths(true, u64::from(u32::MAX)));
    }
    if let Some(schemas) = document["components"]["schemas"].as_object_mut() {
        schemas.extend(deployment_schemas());
    }
    document
}

/// `?tenant=&namespace=`: which deployment a name means (default: the caller's tenant, the
/// namespace `default`).
fn scope_params() -> Vec<Value> {
    ["tenant", "namespace"]
        .into_iter()
        .map(|name| {
            json!({"name": name, "in": "query", "required": false, "description": "empty: default",
                "schema": {"type": "string", "pattern": "^([A-Za-z0-9][A-Za-z0-9_.-]{0,127})?$"}})
        })
        .collect()
}

fn deployment_paths() -> serde_json::Map<String, Value> {
    let deployment =
        json!({"application/json": {"schema": {"$ref": "#/components/schemas/Deployment"}}});
    let name = segment("name", "the deployment's actor_type");
    let mut logs_params = scope_params();
    logs_params.push(json!({"name": "id", "in": "query", "required": false,
        "description": "only the lines of this actor id", "schema": {"type": "string", "maxLength": 256}}));
    let field = json!({"type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$"});
    let paths = json!({
        "/api/v1/deploy": {"post": {
            "summary": "deploy a WebAssembly component: 201 once its types serve, or 202 with a job (?async=true)",
            "operationId": "deploy",
            "parameters": [{"name": "async", "in": "query", "required": false,
                "description": "compile in the background and answer 202 with a status URL",
                "schema": {"type": "boolean"}}],
            "requestBody": {"required": true, "content": {"multipart/form-data": {"schema": {
                "type": "object", "required": ["namespace", "actor_type", "wasm"],
                "properties": {
                    "tenant": field, "namespace": field, "actor_type": field,
                    "version": {"type": "string", "maxLength": 128},
                    "config": {"type": "string", "description": "a JSON object handed to the module's facets"},
                    "wasm": {"type": "string", "format": "binary", "description": "the component (.wasm)"}
                }}}}},
            "responses": merge(json!({
                "201": {"description": "deployed; the types it serves are listed", "content": deployment},
                "202": {"description": "compiling", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/DeployJob"}}}}
            }), problem_responses(&[400, 401, 403, 409, 413, 415, 422, 503]))
        }},
        "/api/v1/deploy/jobs/{job}": {
            "parameters": [segment("job", "the job id from a 202")],
            "get": {"summary": "a background deploy's status: compiling, ready or failed", "operationId": "deploy_job",
                "responses": merge(json!({"200": {"description": "the job", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/DeployJob"}}}}}), problem_responses(&[400, 401, 404]))}
        },
        "/api/v1/deployments": {"get": {"summary": "the deployments", "operationId": "list_deployments",
            "parameters": scope_params(),
            "responses": merge(json!({"200": {"description": "deployments", "content": {"application/json": {"schema": {
                "type": "object", "required": ["deployments"],
                "properties": {"deployments": {"type": "array", "items": {"$ref": "#/components/schemas/Deployment"}}}}}}}}),
                problem_responses(&[400, 401]))}},
        "/api/v1/deployments/{name}": {
            "parameters": [name.clone()],
            "get": {"summary": "one deployment", "operationId": "get_deployment", "parameters": scope_params(),
                "responses": merge(json!({"200": {"description": "the deployment", "content": deployment}}), problem_responses(&[400, 401, 404]))},
            "delete": {"summary": "undeploy: its types stop serving and its actors stop", "operationId": "undeploy", "parameters": scope_params(),
                "responses": merge(json!({"204": {"description": "undeployed"}}), problem_responses(&[400, 401, 404]))}
        },
        "/api/v1/deployments/{name}/logs": {
            "parameters": [segment("name", "a deployed actor type")],
            "get": {"summary": "the type's recent guest log lines as JSON lines (`follow=true`, not listed here, keeps streaming)",
                "operationId": "deployment_logs", "parameters": logs_params,
                "responses": merge(json!({"200": {"description": "JSON lines", "content": {"application/x-ndjson": {"schema": {"type": "string"}}}}}), problem_responses(&[400, 401, 404]))}
        }
    });
    match paths {
        Value::Object(paths) => paths,
        _ => serde_json::Map::new(),
    }
}

fn deployment_schemas() -> serde_json::Map<String, Value> {
    let schemas = json!({
        "Deployment": {
            "type": "object",
            "required": ["tenant", "namespace", "name", "version", "sha256", "types"],
            "properties": {
                "tenant": {"type": "string"}, "namespace": {"type": "string"}, "name": {"type": "string"},
                "version": {"type": "string"}, "sha256": {"type": "string"}, "size_bytes": {"type": "integer"},
                "sdk": {"type": "string"}, "deployed_at_ms": {"type": "integer"}, "compile_ms": {"type": "integer"},
                "cached": {"type": "boolean"}, "config": {}, "instances": {"type": "integer"},
                "discarded_instances": {"type": "integer"}, "pinned_instances": {"type": "integer"},
                "types": {"type": "array", "items": {"type": "object", "required": ["name", "class", "behavior"],
                    "properties": {"name": {"type": "string"}, "class": {"type": "string"}, "behavior": {"type": "string"},
                        "facets": {"type": "array", "items": {"type": "string"}},
                        "handlers": {"type": "array", "items": {"type": "string"}},
                        "state": {"type": "string", "enum": ["host", "guest"]}}}}
            }
        },
        "DeployJob": {
            "type": "object", "required": ["job", "status"],
            "properties": {
                "job": {"type": "string"}, "status": {"type": "string", "enum": ["compiling", "ready", "failed"]},
                "status_url": {"type": "string"}, "deployment": {"$ref": "#/components/schemas/Deployment"},
                "error": {"$ref": "#/components/schemas/Problem"}
            }
        }
    });
    match schemas {
        Value::Object(schemas) => schemas,
        _ => serde_json::Map::new(),
    }
}

/// The worker pools' routes: their life on the admin port, their messages on the invoke port.
pub(crate) fn pool_paths(admin: bool, max_timeout_ms: u64) -> serde_json::Map<String, Value> {
    let scope = vec![segment("tenant", "the tenant"), segment("namespace", "the namespace")];
    let mut with_pool = scope.clone();
    with_pool.push(segment("pool", "the pool's name"));
    let name = json!({"type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$"});
    let pool = json!({"type": "object",
        "required": ["tenant", "namespace", "name", "actor_type", "shards", "strategy", "split_points", "config", "created_ms", "shard_actor_ids"],
        "properties": {"tenant": {"type": "string"}, "namespace": {"type": "string"}, "name": {"type": "string"},
            "actor_type": {"type": "string"}, "shards": {"type": "integer"},
            "strategy": {"type": "string", "enum": ["hash", "consistent_hash", "range"]},
            "split_points": {"type": "array", "items": {"type": "string"}},
            "config": {"type": "object", "additionalProperties": {"type": "string"}},
            "created_ms": {"type": "integer"}, "shard_actor_ids": {"type": "array", "items": {"type": "string"}}}});
    let shards = json!({"type": "integer", "minimum": 1, "maximum": crate::partition::MAX_SHARDS});
    let split_points = json!({"type": "array", "items": {"type": "string"}, "uniqueItems": true, "maxItems": crate::partition::MAX_SHARDS - 1,
        "description": "range partitioning: where each shard after the first begins (in any order; kept sorted)"});
    let config = json!({"type": "object", "additionalProperties": {"type": "string"}});
    let timeout = json!({"type": "integer", "minimum": 0, "maximum": max_timeout_ms});
    let failures = json!({"type": "array", "items": {"type": "object", "required": ["shard", "key", "code", "message"],
        "properties": {"shard": {"type": "integer"}, "key": {"type": "string", "nullable": true}, "code": {"type": "string"}, "message": {"type": "string"}}}});
    let message = json!({"type": "object", "description": "the message (its action field picks the handler)"});
    let paths = if admin {
        json!({
            "/api/v1/pools/{tenant}/{namespace}": {
                "parameters": scope,
                "get": {"summary": "the worker pools of a namespace", "operationId": "list_pools",
                    "responses": merge(json!({"200": answer(json!({"type": "object", "required": ["pools"],
                        "properties": {"pools": {"type": "array", "items": pool}}}))}), problem_responses(&[400, 401]))},
                "post": {"summary": "create a worker pool (the same pool again is 200, other parameters 409)", "operationId": "create_pool",
                    "requestBody": body(json!({"oneOf": [
                        {"type": "object", "required": ["name", "actor_type", "shards", "strategy"], "additionalProperties": false,
                            "properties": {"name": name, "actor_type": name, "shards": shards,
                                "strategy": {"type": "string", "enum": ["hash", "consistent_hash"]}, "config": config}},
                        {"type": "object", "required": ["name", "actor_type", "strategy", "split_points"], "additionalProperties": false,
                            "description": "range partitioning: one shard more than split points",
                            "properties": {"name": name, "actor_type": name,
                                "strategy": {"type": "string", "enum": ["range"]}, "split_points": split_points, "config": config}}
                    ]})),
                    "responses": merge(json!({
                        "201": answer(json!({"type": "object", "required": ["pool", "created"], "properties": {"pool": pool, "created": {"type": "boolean"}}})),
                        "200": answer(json!({"type": "object", "required": ["pool", "created"], "properties": {"pool": pool, "created": {"type": "boolean"}}}))
                    }), problem_responses(&[400, 401, 404, 409, 413, 415, 503]))}
            },
            "/api/v1/pools/{tenant}/{namespace}/{pool}": {
                "parameters": with_pool.clone(),
                "get": {"summary": "one worker pool", "operationId": "get_pool",
                    "responses": merge(json!({"200": answer(pool.clone())}), problem_responses(&[400, 401, 404]))},
                "delete": {"summary": "delete a worker pool and its shard actors", "operationId": "delete_pool",
                    "responses": merge(json!({"200": answer(json!({"type": "object", "required": ["deleted"], "properties": {"deleted": {"type": "boolean"}}}))}), problem_responses(&[400, 401, 404]))}
            },
            "/api/v1/pools/{tenant}/{namespace}/{pool}/scale": {
                "parameters": with_pool,
                "post": {"summary": "give a pool a new shard count (consistent hashing moves only the keys that must move)", "operationId": "scale_pool",
                    "requestBody": body(json!({"oneOf": [
                        {"type": "object", "required": ["shards"], "additionalProperties": false, "properties": {"shards": shards}},
                        {"type": "object", "required": ["split_points"], "additionalProperties": false, "properties": {"split_points": split_points}}
                    ]})),
                    "responses": merge(json!({"200": answer(pool)}), problem_responses(&[400, 401, 404, 409, 413, 415]))}
            }
        })
    } else {
        json!({
            "/api/v1/pools/{tenant}/{namespace}/{pool}/update": {
                "parameters": with_pool.clone(),
                "post": {"summary": "send each key's message to its shard, in per-shard batches", "operationId": "pool_update",
                    "requestBody": body(json!({"type": "object", "required": ["messages"], "additionalProperties": false,
                        "properties": {"messages": {"type": "object", "additionalProperties": message},
                            "consistency": {"type": "string", "enum": ["eventual", "strong"]},
                            "wait": {"type": "boolean"}, "timeout_ms": timeout}})),
                    "responses": merge(json!({"200": answer(json!({"type": "object", "required": ["delivered", "per_shard", "replies", "failures"],
                        "properties": {"delivered": {"type": "integer"}, "per_shard": {"type": "array", "items": {"type": "integer"}},
                            "replies": {"type": "object", "nullable": true}, "failures": failures}}))}),
                        problem_responses(&[400, 401, 404, 413, 415]))}
            },
            "/api/v1/pools/{tenant}/{namespace}/{pool}/map": {
                "parameters": with_pool.clone(),
                "post": {"summary": "ask every shard, each within the deadline", "operationId": "pool_map",
                    "requestBody": body(json!({"type": "object", "required": ["message"], "additionalProperties": false,
                        "properties": {"message": message, "timeout_ms": timeout}})),
                    "responses": merge(json!({"200": answer(json!({"type": "object", "required": ["replies", "failures"],
                        "properties": {"replies": {"type": "array", "items": {"type": "object"}}, "failures": failures}}))}),
                        problem_responses(&[400, 401, 404, 413, 415]))}
            },
            "/api/v1/pools/{tenant}/{namespace}/{pool}/reduce": {
                "parameters": with_pool,
                "post": {"summary": "ask every shard and combine the replies", "operationId": "pool_reduce",
                    "requestBody": body(json!({"type": "object", "required": ["message", "strategy"], "additionalProperties": false,
                        "properties": {"message": message, "strategy": {"type": "string", "enum": ["concat", "sum", "min", "max", "count", "merge"]},
                            "expected": {"type": "integer", "minimum": 0, "maximum": u32::MAX}, "timeout_ms": timeout}})),
                    "responses": merge(json!({"200": answer(json!({"type": "object", "required": ["result", "replied", "expected", "complete", "failures"],
                        "properties": {"result": {}, "replied": {"type": "integer"}, "expected": {"type": "integer"},
                            "complete": {"type": "boolean"}, "failures": failures}}))}),
                        problem_responses(&[400, 401, 404, 413, 415]))}
            }
        })
    };
    match paths {
        Value::Object(paths) => paths,
        _ => serde_json::Map::new(),
    }
}
