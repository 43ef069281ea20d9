//! The node's metrics, rendered in the Prometheus text format at `/metrics` on the admin port:
//! requests and latency histograms per route (HTTP) and per method (gRPC), actors by lifecycle
//! state, and mailbox depth by actor type. Every metric name is defined here, once.

use std::{
    collections::{BTreeMap, HashMap},
    fmt::Write as _,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering::Relaxed},
    },
    time::Duration,
};

use parking_lot::{Mutex, RwLock};
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

/// Requests to one route (or gRPC method): by outcome, and a latency histogram.
#[derive(Debug, Default)]
struct Route {
    by_outcome: Mutex<BTreeMap<String, u64>>,
    /// Non-cumulative counts per bucket; the last slot is +Inf.
    buckets: [AtomicU64; BUCKETS.len() + 1],
    count: AtomicU64,
    sum_nanos: AtomicU64,
}

impl Route {
    fn observe(&self, outcome: &str, elapsed: Duration) {
        {
            let mut by_outcome = self.by_outcome.lock();
            match by_outcome.get_mut(outcome) {
                Some(count) => *count += 1,
                None => {
                    by_outcome.insert(outcome.to_owned(), 1);
                }
            }
        }
        let seconds = elapsed.as_secs_f64();
        let bucket = BUCKETS.iter().position(|bound| seconds <= *bound).unwrap_or(BUCKETS.len());
        self.buckets[bucket].fetch_add(1, Relaxed);
        self.count.fetch_add(1, Relaxed);
        self.sum_nanos.fetch_add(u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX), Relaxed);
    }
}

/// (port or "grpc", method, route).
type RouteKey = (&'static str, String, String);

/// The node's request metrics.
#[derive(Debug, Default)]
pub(crate) struct Metrics {
    routes: RwLock<HashMap<RouteKey, Arc<Route>>>,
}

impl Metrics {
    fn route(&self, key: RouteKey) -> Arc<Route> {
        if let Some(route) = self.routes.read().get(&key) {
            return Arc::clone(route);
        }
        Arc::clone(self.routes.write().entry(key).or_default())
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
        let method = match method {
            "GET" | "POST" | "PUT" | "DELETE" | "PATCH" | "HEAD" | "OPTIONS" => method,
            _ => "OTHER",
        };
        self.route((port, method.to_owned(), route.to_owned()))
            .observe(&status.to_string(), elapsed);
    }

    /// One gRPC call to `method` (`Service/Method`), answered with `code`.
    pub(crate) fn observe_grpc(&self, method: &'static str, code: tonic::Code, elapsed: Duration) {
        self.route(("grpc", "POST".to_owned(), method.to_owned()))
            .observe(&format!("{code:?}"), elapsed);
    }

    /// The text exposition of every metric.
    pub(crate) fn render(&self, system: &System, actor_types: usize, uptime: Duration) -> String {
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
        let (http, grpc): (Vec<_>, Vec<_>) =
            routes.iter().partition(|((port, _, _), _)| *port != "grpc");

        header(
            &mut out,
            HTTP_REQUESTS,
            "counter",
            "HTTP requests by port, method, route and status",
        );
        for ((port, method, route), stats) in &http {
            for (status, count) in stats.by_outcome.lock().iter() {
                let labels = labels(&[
                    ("port", port),
                    ("method", method),
                    ("route", route),
                    ("status", status),
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
        for ((port, method, route), stats) in &http {
            histogram(
                &mut out,
                HTTP_DURATION,
                &[("port", port), ("method", method), ("route", route)],
                stats,
            );
        }
        header(&mut out, GRPC_REQUESTS, "counter", "gRPC calls by method and status code");
        for ((_, _, method), stats) in &grpc {
            for (code, count) in stats.by_outcome.lock().iter() {
                let labels = labels(&[("method", method), ("code", code)]);
                let _ = writeln!(out, "{GRPC_REQUESTS}{labels} {count}");
            }
        }
        header(&mut out, GRPC_DURATION, "histogram", "gRPC call latency by method");
        for ((_, _, method), stats) in &grpc {
            histogram(&mut out, GRPC_DURATION, &[("method", method)], stats);
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
        route.observe("200", Duration::from_micros(40));
        route.observe("200", Duration::from_millis(3));
        route.observe("500", Duration::from_secs(60));
        let mut out = String::new();
        histogram(&mut out, "x", &[("route", "/a\"b")], &route);
        assert!(out.contains("x_bucket{route=\"/a\\\"b\",le=\"0.00005\"} 1\n"), "{out}");
        assert!(out.contains("x_bucket{route=\"/a\\\"b\",le=\"0.005\"} 2\n"), "{out}");
        assert!(out.contains("x_bucket{route=\"/a\\\"b\",le=\"30\"} 2\n"), "{out}");
        assert!(out.contains("x_bucket{route=\"/a\\\"b\",le=\"+Inf\"} 3\n"), "{out}");
        assert!(out.contains("x_count{route=\"/a\\\"b\"} 3\n"), "{out}");
        assert_eq!(route.by_outcome.lock().get("200"), Some(&2));
    }
}
