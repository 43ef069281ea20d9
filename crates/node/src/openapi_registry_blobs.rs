//! The invoke port's OpenAPI paths of the service registry and the blob store.

use serde_json::{Map, Value, json};

use crate::openapi::{answer, body, merge, object, problem_responses, segment};

fn into_map(paths: Value) -> Map<String, Value> {
    match paths {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

fn query(name: &str, description: &str, schema: Value) -> Value {
    json!({"name": name, "in": "query", "required": false, "description": description, "schema": schema})
}

/// The service registry.
pub(crate) fn registry_paths() -> Map<String, Value> {
    use plexspaces_storage::registry::{MAX_INSTANCE, MAX_LIST, MAX_SERVICE, MAX_TTL_MS};
    let scope = vec![segment("tenant", "the tenant"), segment("namespace", "the namespace")];
    let service_pattern = format!("^[A-Za-z0-9][A-Za-z0-9._:-]{{0,{}}}$", MAX_SERVICE - 1);
    let mut with_service = scope.clone();
    with_service.push(json!({"name": "service", "in": "path", "required": true,
        "description": "the service (1 to 64 of A-Z a-z 0-9 . _ - :, starting with a letter or digit)",
        "schema": {"type": "string", "pattern": service_pattern}}));
    let mut with_instance = with_service.clone();
    with_instance.push(json!({"name": "instance", "in": "path", "required": true,
        "description": "the instance (1 to 190 characters, no control characters; a '/' sent as %2F)",
        "schema": {"type": "string", "pattern": format!("^[^\\u0000-\\u001f\\u007f-\\u009f]{{1,{MAX_INSTANCE}}}$")}}));
    let registration = json!({"type": "object",
        "required": ["service", "instance", "metadata", "ttl_ms", "registered_at_ms", "expires_at_ms"],
        "properties": {"service": {"type": "string"}, "instance": {"type": "string"}, "metadata": {"type": "object"},
            "ttl_ms": {"type": "integer"}, "registered_at_ms": {"type": "integer"}, "expires_at_ms": {"type": "integer"}}});
    let ttl = json!({"type": "integer", "minimum": 0, "maximum": MAX_TTL_MS});
    let errors = problem_responses;
    into_map(json!({
        "/api/v1/registry/{tenant}/{namespace}": {
            "parameters": scope,
            "get": {"summary": "the services with live instances, in name order", "operationId": "list_services",
                "parameters": [
                    query("prefix", "names that start with it", json!({"type": "string", "pattern": format!("^[A-Za-z0-9._:-]{{0,{MAX_SERVICE}}}$")})),
                    query("after", "the services after this one", json!({"type": "string"})),
                    query("limit", "0: 100", json!({"type": "integer", "minimum": 0, "maximum": MAX_LIST}))
                ],
                "responses": merge(json!({"200": answer(json!({"type": "object", "required": ["services", "next_after"],
                    "properties": {"services": {"type": "array", "items": {"type": "object", "required": ["service", "instances"],
                        "properties": {"service": {"type": "string"}, "instances": {"type": "integer"}}}},
                        "next_after": {"type": "string", "nullable": true}}}))}), errors(&[400, 401]))}
        },
        "/api/v1/registry/{tenant}/{namespace}/{service}": {
            "parameters": with_service,
            "get": {"summary": "the live instances of a service", "operationId": "lookup_service",
                "responses": merge(json!({"200": answer(json!({"type": "object", "required": ["service", "instances"],
                    "properties": {"service": {"type": "string"}, "instances": {"type": "array", "items": registration.clone()}}}))}),
                    errors(&[400, 401]))}
        },
        "/api/v1/registry/{tenant}/{namespace}/{service}/{instance}": {
            "parameters": with_instance.clone(),
            "put": {"summary": "register an instance (again: new metadata and time to live, same registered_at_ms)", "operationId": "register_instance",
                "requestBody": body(object(&[], json!({"metadata": {"type": "object", "nullable": true}, "ttl_ms": ttl.clone()}))),
                "responses": merge(json!({"200": answer(registration.clone())}), errors(&[400, 401, 413, 415]))},
            "delete": {"summary": "deregister an instance", "operationId": "deregister_instance",
                "responses": merge(json!({"200": answer(json!({"type": "object", "required": ["deregistered"],
                    "properties": {"deregistered": {"type": "boolean"}}}))}), errors(&[400, 401]))}
        },
        "/api/v1/registry/{tenant}/{namespace}/{service}/{instance}/heartbeat": {
            "parameters": with_instance,
            "post": {"summary": "renew a live instance; 404 once it expired (register again)", "operationId": "heartbeat_instance",
                "requestBody": body(object(&[], json!({"ttl_ms": ttl}))),
                "responses": merge(json!({"200": answer(registration)}), errors(&[400, 401, 404, 413, 415]))}
        }
    }))
}

/// The blob store and its presigned URLs.
pub(crate) fn blob_paths() -> Map<String, Value> {
    use plexspaces_storage::{blobs::MAX_LIST, presign::MAX_TTL_MS};
    let scope = vec![segment("tenant", "the tenant"), segment("namespace", "the namespace")];
    // The documents describe keys of plain characters (which every store keeps as they are);
    // the node takes any key its rules allow (see the description).
    let segment_pattern = "[A-Za-z0-9_-][A-Za-z0-9_.-]{0,239}";
    let mut with_key = scope.clone();
    with_key.push(json!({"name": "key", "in": "path", "required": true,
        "description": "the blob's key: segments separated by '/' (1 to 1024 bytes of UTF-8; no segment empty, '.' or '..'; \
            no control characters; a segment at most 240 bytes once percent-encoded for storage)",
        "schema": {"type": "string", "pattern": format!("^{segment_pattern}$")}}));
    let info = json!({"type": "object", "required": ["key", "size", "content_type", "modified_at_ms", "etag"],
        "properties": {"key": {"type": "string"}, "size": {"type": "integer"}, "content_type": {"type": "string"},
            "modified_at_ms": {"type": "integer"}, "etag": {"type": "string"}}});
    let bytes = json!({"description": "the blob, streamed", "content": {"*/*": {"schema": {"type": "string", "format": "binary"}}}});
    let upload = json!({"required": false, "description": "the blob (any size up to max_blob_bytes), streamed; its Content-Type is the blob's",
        "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}});
    let errors = problem_responses;
    let mut presigned = with_key.clone();
    presigned.push(
        json!({"name": "expires", "in": "query", "required": true, "description": "as signed",
        "schema": {"type": "string", "pattern": "^[0-9]{1,20}$"}}),
    );
    presigned.push(
        json!({"name": "signature", "in": "query", "required": true, "description": "as signed",
        "schema": {"type": "string", "pattern": "^[0-9a-f]{64}$"}}),
    );
    into_map(json!({
        "/api/v1/blobs/{tenant}/{namespace}": {
            "parameters": scope.clone(),
            "get": {"summary": "the blobs whose keys start with prefix, in key order", "operationId": "list_blobs",
                "parameters": [
                    query("prefix", "keys that start with it (not only at a '/')", json!({"type": "string", "maxLength": 1024, "pattern": "^[^\\u0000-\\u001f\\u007f-\\u009f]*$"})),
                    query("after", "the keys after this one", json!({"type": "string"})),
                    query("limit", "0: 100", json!({"type": "integer", "minimum": 0, "maximum": MAX_LIST}))
                ],
                "responses": merge(json!({"200": answer(json!({"type": "object", "required": ["blobs", "next_after"],
                    "properties": {"blobs": {"type": "array", "items": info.clone()}, "next_after": {"type": "string", "nullable": true}}}))}),
                    errors(&[400, 401]))}
        },
        "/api/v1/blobs/{tenant}/{namespace}/{key}": {
            "parameters": with_key,
            "put": {"summary": "store a blob, replacing what was there; durable when it answers", "operationId": "put_blob",
                "requestBody": upload.clone(),
                "responses": merge(json!({"201": answer(info.clone())}), errors(&[400, 401, 408, 409, 413]))},
            "get": {"summary": "a blob's bytes, streamed, with its Content-Type and ETag", "operationId": "get_blob",
                "responses": merge(json!({"200": bytes.clone()}), errors(&[400, 401, 404]))},
            "delete": {"summary": "remove a blob", "operationId": "delete_blob",
                "responses": merge(json!({"200": answer(json!({"type": "object", "required": ["deleted"],
                    "properties": {"deleted": {"type": "boolean"}}}))}), errors(&[400, 401]))}
        },
        "/api/v1/blob-urls/{tenant}/{namespace}": {
            "parameters": scope,
            "post": {"summary": "a presigned URL: whoever holds it may GET or PUT the blob, with no other credential, until it expires",
                "operationId": "presign_blob",
                "requestBody": body(object(&["key"], json!({
                    "key": {"type": "string", "pattern": format!("^{segment_pattern}(/{segment_pattern}){{0,3}}$")},
                    "method": {"type": "string", "enum": ["GET", "PUT"]},
                    "ttl_ms": {"type": "integer", "minimum": 0, "maximum": MAX_TTL_MS, "description": "0: 900000"}}))),
                "responses": merge(json!({"201": answer(json!({"type": "object", "required": ["url", "path", "expires_at_ms"],
                    "properties": {"url": {"type": "string"}, "path": {"type": "string"}, "expires_at_ms": {"type": "integer"}}}))}),
                    errors(&[400, 401, 413, 415]))}
        },
        "/api/v1/presigned/{tenant}/{namespace}/{key}": {
            "parameters": presigned,
            "get": {"summary": "read the blob a presigned GET URL names", "operationId": "presigned_get", "security": [{}],
                "responses": merge(json!({"200": bytes}), errors(&[400, 403, 404]))},
            "put": {"summary": "store the blob a presigned PUT URL names", "operationId": "presigned_put", "security": [{}],
                "requestBody": upload,
                "responses": merge(json!({"201": answer(info)}), errors(&[400, 403, 408, 409, 413]))}
        }
    }))
}
