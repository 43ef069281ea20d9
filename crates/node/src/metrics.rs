//! The node's metrics, rendered in the Prometheus text format at `/metrics` on the admin port:
//! requests and latency histograms per route (HTTP) and per method (gRPC), actors by lifecycle
//! state, and mailbox depth by actor type. Every metric name is defined here, once.

use std::{
    collections::BTreeMap,
    fmt::Write as _,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering::Relaxed},
    },
    time::Duration,
};

use parking_lot::RwLock;
use plexspaces_core::{Lifecycle, System};

const HTTP_REQUESTS: &str = "plexspaces_http_requests_total";
const HTTP_DURATION: &str = "plexspaces_http_request_duration_seconds";
const GRPC_REQUESTS: &str = "plexspaces_grpc_requests_total";
const GRPC_DURATION: &str = "plexspaces_grpc_request_duration_seconds";
const ACTORS: &str = "plexspaces_actors";
const MAILBOX_DEPTH: &str = "plexspaces_mailbox_depth_messages";
const MAILBOX_DEPTH_MAX: &str = "plexspaces_mailbox_depth_max_messages";
const ACTOR_TYPES: &str = "plexspaces_actor_types";
const UPTIME: &str = "plexspaces_uptime_seconds";
const PG_DROPPED: &str = "plexspaces_pg_messages_dropped_total";

/// Upper bounds of the latency buckets, in seconds.
const BUCKETS: [f64; 18] = [
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
    2.5, 5.0, 10.0, 30.0,
];

/// The same bounds as `le` label values, then `+Inf`.
const BUCKET_LABELS: [&str; 19] = [
    "0.00005", "0.0001", "0.00025", "0.0005", "0.001", "0.0025", "0.005", "0.01", "0.025", "0.05",
    "0.1", "0.25", "0.5", "1", "2.5", "5", "10", "30", "+Inf",
];

/// The HTTP statuses counted one by one; any other is counted under its own last slot.
const STATUSES: [u16; 18] =
    [200, 202, 204, 400, 401, 403, 404, 405, 408, 409, 410, 413, 415, 422, 500, 503, 504, 0];

/// gRPC status codes, by number (`tonic::Code as usize`).
const GRPC_CODES: [&str; 17] = [
    "Ok",
    "Cancelled",
    "Unknown",
    "InvalidArgument",
    "DeadlineExceeded",
    "NotFound",
    "AlreadyExists",
    "PermissionDenied",
    "ResourceExhausted",
    "FailedPrecondition",
    "Aborted",
    "OutOfRange",
    "Unimplemented",
    "Internal",
    "Unavailable",
    "DataLoss",
    "Unauthenticated",
];

/// HTTP methods, by index; the last is every other method.
const METHODS: [&str; 8] = ["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "OTHER"];

/// Requests to one route (or gRPC method): counts by outcome (an HTTP status from
/// `STATUSES`, or a gRPC code) and a latency histogram. Updates take no lock.
#[derive(Debug, Default)]
struct Route {
    outcomes: [AtomicU64; 18],
    /// Non-cumulative counts per bucket; the last slot is +Inf.
    buckets: [AtomicU64; BUCKETS.len() + 1],
    count: AtomicU64,
    sum_nanos: AtomicU64,
}

impl Route {
    fn observe(&self, outcome: usize, elapsed: Duration) {
        self.outcomes[outcome.min(self.outcomes.len() - 1)].fetch_add(1, Relaxed);
        let seconds = elapsed.as_secs_f64();
        let bucket = BUCKETS.iter().position(|bound| seconds <= *bound).unwrap_or(BUCKETS.len());
        self.buckets[bucket].fetch_add(1, Relaxed);
        self.count.fetch_add(1, Relaxed);
        self.sum_nanos.fetch_add(u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX), Relaxed);
    }

    /// (label, count) of every outcome seen, HTTP statuses or gRPC codes.
    fn outcomes(&self, grpc: bool) -> Vec<(String, u64)> {
        let mut seen = Vec::new();
        for (index, count) in self.outcomes.iter().enumerate() {
            let count = count.load(Relaxed);
            if count == 0 {
                continue;
            }
            let label = if grpc {
                GRPC_CODES.get(index).map_or("Other", |code| code).to_owned()
            } else {
                match STATUSES[index] {
                    0 => "other".to_owned(),
                    status => status.to_string(),
                }
            };
            seen.push((label, count));
        }
        seen
    }
}

/// A route's key: port (or "grpc"), method index, route template.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct RouteKey {
    port: &'static str,
    method: usize,
    route: Box<str>,
}

/// The same key, borrowed, to look a route up without allocating.
#[derive(Hash)]
struct RouteRef<'a> {
    port: &'static str,
    method: usize,
    route: &'a str,
}

impl hashbrown::Equivalent<RouteKey> for RouteRef<'_> {
    fn equivalent(&self, key: &RouteKey) -> bool {
        self.port == key.port && self.method == key.method && self.route == &*key.route
    }
}

/// The node's request metrics.
#[derive(Debug, Default)]
pub(crate) struct Metrics {
    routes: RwLock<hashbrown::HashMap<RouteKey, Arc<Route>, foldhash::fast::RandomState>>,
}

impl Metrics {
    fn route(&self, port: &'static str, method: usize, route: &str) -> Arc<Route> {
        let key = RouteRef { port, method, route };
        if let Some(stats) = self.routes.read().get(&key) {
            return Arc::clone(stats);
        }
        let owned = RouteKey { port, method, route: route.into() };
        Arc::clone(self.routes.write().entry(owned).or_default())
    }

    /// One HTTP request on `port` to `route` (the matched route template, so the label set
    /// stays bounded), answered with `status`.
    pub(crate) fn observe_http(
        &self,
        port: &'static str,
        method: &str,
        route: &str,
        status: u16,
        elapsed: Duration,
    ) {
        let method = METHODS.iter().position(|known| *known == method).unwrap_or(METHODS.len() - 1);
        let outcome =
            STATUSES.iter().position(|known| *known == status).unwrap_or(STATUSES.len() - 1);
        self.route(port, method, route).observe(outcome, elapsed);
    }

    /// One gRPC call to `method` (`Service/Method`), answered with `code`.
    pub(crate) fn observe_grpc(&self, method: &'static str, code: tonic::Code, elapsed: Duration) {
        self.route("grpc", 1, method).observe(code as usize, elapsed);
    }

    /// The text exposition of every metric.
    pub(crate) fn render(
        &self,
        system: &System,
        services: &plexspaces_wasm::Services,
        actor_types: usize,
        uptime: Duration,
    ) -> String {
        let mut out = String::with_capacity(32 * 1024);
        let routes: Vec<(RouteKey, Arc<Route>)> = {
            let mut routes: Vec<_> = self
                .routes
                .read()
                .iter()
                .map(|(key, route)| (key.clone(), Arc::clone(route)))
                .collect();
            routes.sort_by(|a, b| a.0.cmp(&b.0));
            routes
        };
        let (http, grpc): (Vec<_>, Vec<_>) = routes.iter().partition(|(key, _)| key.port != "grpc");

        header(
            &mut out,
            HTTP_REQUESTS,
            "counter",
            "HTTP requests by port, method, route and status",
        );
        for (key, stats) in &http {
            let method = METHODS[key.method];
            for (status, count) in stats.outcomes(false) {
                let labels = labels(&[
                    ("port", key.port),
                    ("method", method),
                    ("route", &key.route),
                    ("status", &status),
                ]);
                let _ = writeln!(out, "{HTTP_REQUESTS}{labels} {count}");
            }
        }
        header(
            &mut out,
            HTTP_DURATION,
            "histogram",
            "HTTP request latency by port, method and route",
        );
        for (key, stats) in &http {
            let base =
                [("port", key.port), ("method", METHODS[key.method]), ("route", &*key.route)];
            histogram(&mut out, HTTP_DURATION, &base, stats);
        }
        header(&mut out, GRPC_REQUESTS, "counter", "gRPC calls by method and status code");
        for (key, stats) in &grpc {
            for (code, count) in stats.outcomes(true) {
                let labels = labels(&[("method", &key.route), ("code", &code)]);
                let _ = writeln!(out, "{GRPC_REQUESTS}{labels} {count}");
            }
        }
        header(&mut out, GRPC_DURATION, "histogram", "gRPC call latency by method");
        for (key, stats) in &grpc {
            histogram(&mut out, GRPC_DURATION, &[("method", &key.route)], stats);
        }

        header(&mut out, ACTORS, "gauge", "actors on this node by lifecycle state");
        for state in Lifecycle::ALL.into_iter().filter(|state| !state.is_final()) {
            let labels = labels(&[("lifecycle", state.as_str())]);
            let _ = writeln!(out, "{ACTORS}{labels} {}", system.actors_in(state).max(0));
        }
        let mut depth: BTreeMap<String, (u64, u64)> = BTreeMap::new();
        for actor in system.actors() {
            let queued = actor.mailbox_len() as u64;
            let entry = depth.entry(actor.id().actor_type.as_str().to_owned()).or_default();
            entry.0 += queued;
            entry.1 = entry.1.max(queued);
        }
        header(
            &mut out,
            MAILBOX_DEPTH,
            "gauge",
            "messages queued and not yet handled, by actor type",
        );
        for (actor_type, (total, _)) in &depth {
            let _ =
                writeln!(out, "{MAILBOX_DEPTH}{} {total}", labels(&[("actor_type", actor_type)]));
        }
        header(&mut out, MAILBOX_DEPTH_MAX, "gauge", "the deepest mailbox of an actor of the type");
        for (actor_type, (_, max)) in &depth {
            let _ =
                writeln!(out, "{MAILBOX_DEPTH_MAX}{} {max}", labels(&[("actor_type", actor_type)]));
        }
        header(&mut out, ACTOR_TYPES, "gauge", "actor types this node serves");
        let _ = writeln!(out, "{ACTOR_TYPES} {actor_types}");
        header(
            &mut out,
            PG_DROPPED,
            "counter",
            "process group messages dropped by members without a pg_message handler",
        );
        let _ = writeln!(out, "{PG_DROPPED} {}", services.groups.dropped());
        header(&mut out, UPTIME, "gauge", "seconds since the node started");
        let _ = writeln!(out, "{UPTIME} {}", uptime.as_secs_f64());
        out
    }
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

fn histogram(out: &mut String, name: &str, base: &[(&str, &str)], stats: &Route) {
    let base = labels(base);
    // `{a="x"` without the closing brace, to append `le`.
    let open = &base[..base.len() - 1];
    let mut cumulative = 0;
    for (bucket, le) in stats.buckets.iter().zip(BUCKET_LABELS) {
        cumulative += bucket.load(Relaxed);
        let _ = writeln!(out, "{name}_bucket{open},le=\"{le}\"}} {cumulative}");
    }
    let sum = stats.sum_nanos.load(Relaxed) as f64 / 1e9;
    let _ = writeln!(out, "{name}_sum{base} {sum}");
    let _ = writeln!(out, "{name}_count{base} {}", stats.count.load(Relaxed));
}

/// `{a="x",b="y"}` with values escaped as the text format requires.
fn labels(pairs: &[(&str, &str)]) -> String {
    let mut out = String::with_capacity(64);
    out.push('{');
    for (index, (name, value)) in pairs.iter().enumerate() {
        if index > 0 {
            out.push(',');
        }
        out.push_str(name);
        out.push_str("=\"");
        if value.contains(['\\', '"', '\n']) {
            for c in value.chars() {
                match c {
                    '\\' => out.push_str("\\\\"),
                    '"' => out.push_str("\\\""),
                    '\n' => out.push_str("\\n"),
                    c => out.push(c),
                }
            }
        } else {
            out.push_str(value);
        }
        out.push('"');
    }
    out.push('}');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_histogram_is_cumulative_and_labels_are_escaped() {
        let route = Route::default();
        route.observe(0, Duration::from_micros(40));
        route.observe(0, Duration::from_millis(3));
        route.observe(14, Duration::from_secs(60));
        let mut out = String::new();
        histogram(&mut out, "x", &[("route", "/a\"b")], &route);
        assert!(out.contains("x_bucket{route=\"/a\\\"b\",le=\"0.00005\"} 1\n"), "{out}");
        assert!(out.contains("x_bucket{route=\"/a\\\"b\",le=\"0.005\"} 2\n"), "{out}");
        assert!(out.contains("x_bucket{route=\"/a\\\"b\",le=\"30\"} 2\n"), "{out}");
        assert!(out.contains("x_bucket{route=\"/a\\\"b\",le=\"+Inf\"} 3\n"), "{out}");
        assert!(out.contains("x_count{route=\"/a\\\"b\"} 3\n"), "{out}");
        assert_eq!(route.outcomes(false), [("200".to_owned(), 2), ("500".to_owned(), 1)]);
    }
}
