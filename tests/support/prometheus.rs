//! A real Prometheus (Debian's `prometheus`) on loopback: started with a config file and its
//! own TSDB directory, stopped by PID, and queried through its HTTP API (`/api/v1/query`,
//! `/api/v1/query_range`, label values) the way Grafana queries it.

use std::net::SocketAddr;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::daemon::http;
use super::proc::{self, Proc};

/// A running Prometheus.
pub struct Prometheus {
    /// Where its HTTP API listens.
    pub addr: SocketAddr,
    /// The process (its temp dir holds the config and the TSDB).
    pub proc: Proc,
}

/// One series of a range query: its labels and `(unix seconds, value)` samples.
#[derive(Debug, Clone)]
pub struct Series {
    /// The labels.
    pub labels: serde_json::Map<String, Value>,
    /// The samples, oldest first (values as Prometheus sends them: "NaN" is NaN).
    pub samples: Vec<(f64, f64)>,
}

impl Series {
    /// The value of label `name` ("" when absent).
    pub fn label(&self, name: &str) -> &str {
        self.labels.get(name).and_then(Value::as_str).unwrap_or("")
    }
}

fn encode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

impl Prometheus {
    /// Starts `prometheus` with `config` (YAML) on a free loopback port; ready once
    /// `/-/ready` answers 200 (at most 30 s). `extra` files are written next to the config.
    pub fn start(config: &str, extra: &[(&str, &str)]) -> Prometheus {
        let bin = proc::require("prometheus", "prometheus");
        let dir = proc::temp_dir("prometheus");
        let path = dir.path().join("prometheus.yml");
        std::fs::write(&path, config).unwrap();
        for (name, text) in extra {
            std::fs::write(dir.path().join(name), text).unwrap();
        }
        let addr: SocketAddr = format!("127.0.0.1:{}", proc::free_port()).parse().unwrap();
        let mut cmd = Command::new(bin);
        cmd.arg(format!("--config.file={}", path.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address={addr}"))
            .arg("--log.level=warn");
        let proc = Proc::start("prometheus", cmd, dir, Duration::from_secs(30), || {
            http(addr, "GET", "/-/ready", None, None).is_ok_and(|(s, _)| s == 200)
        })
        .unwrap_or_else(|e| panic!("prometheus did not start: {e}"));
        Prometheus { addr, proc }
    }

    /// `GET path` on the API; the `data` of a `success` answer, else a panic with the error.
    pub fn api(&self, path: &str) -> Value {
        let (status, body) = http(self.addr, "GET", path, None, None)
            .unwrap_or_else(|e| panic!("prometheus GET {path}: {e}\n{}", self.proc.logs()));
        let v: Value = serde_json::from_str(&body)
            .unwrap_or_else(|e| panic!("prometheus GET {path}: {status} not JSON ({e}): {body}"));
        assert!(
            status == 200 && v["status"] == "success",
            "prometheus GET {path}: {status} {body}"
        );
        v["data"].clone()
    }

    /// An instant query now: `(labels, value)` per series of a vector result.
    pub fn query(&self, expr: &str) -> Vec<(serde_json::Map<String, Value>, f64)> {
        let data = self.api(&format!("/api/v1/query?query={}", encode(expr)));
        data["result"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                (
                    r["metric"].as_object().unwrap().clone(),
                    parse_value(&r["value"][1]),
                )
            })
            .collect()
    }

    /// A range query from `start` to `end` (unix seconds) with a step of `step` seconds, as a
    /// Grafana panel asks.
    pub fn query_range(&self, expr: &str, start: f64, end: f64, step: f64) -> Vec<Series> {
        let data = self.api(&format!(
            "/api/v1/query_range?query={}&start={start:.3}&end={end:.3}&step={step}",
            encode(expr)
        ));
        data["result"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| Series {
                labels: r["metric"].as_object().unwrap().clone(),
                samples: r["values"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|p| (p[0].as_f64().unwrap(), parse_value(&p[1])))
                    .collect(),
            })
            .collect()
    }

    /// The values of `label` on the series matching `selector` (Grafana's `label_values`).
    pub fn label_values(&self, label: &str, selector: &str) -> Vec<String> {
        let data = self.api(&format!(
            "/api/v1/label/{label}/values?match[]={}",
            encode(selector)
        ));
        data.as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_string())
            .collect()
    }

    /// Polls the instant query `expr` until `pred` holds for its result (at most `within`);
    /// panics with the last result and both logs otherwise.
    pub fn wait_for(
        &self,
        what: &str,
        expr: &str,
        within: Duration,
        pred: impl Fn(&[(serde_json::Map<String, Value>, f64)]) -> bool,
        other_logs: &dyn Fn() -> String,
    ) {
        let deadline = Instant::now() + within;
        loop {
            let r = self.query(expr);
            if pred(&r) {
                return;
            }
            if Instant::now() > deadline {
                panic!(
                    "Prometheus never showed {what} within {within:?}: {expr} = {r:?}\n{}\n{}",
                    self.proc.logs(),
                    other_logs()
                );
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

fn parse_value(v: &Value) -> f64 {
    v.as_str()
        .and_then(|s| s.parse::<f64>().ok())
        .unwrap_or(f64::NAN)
}
