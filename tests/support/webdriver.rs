//! A real browser for end-to-end tests of the status page: Debian's `chromedriver` on a free
//! loopback port driving headless `chromium` (fresh profile), spoken to with the W3C WebDriver
//! JSON protocol over reqwest. Dropping the [`Browser`] ends the session (chromium quits) and
//! then stops chromedriver by its PID.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::proc::{self, Proc};

/// Element reference key of the W3C protocol.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// A headless chromium session.
pub struct Browser {
    base: String,
    session: String,
    client: reqwest::Client,
    rt: tokio::runtime::Runtime,
    // Declared last: stopped after the session is deleted (see Drop).
    driver: Option<Proc>,
}

impl Browser {
    /// Starts chromedriver and a session of headless chromium (window 1280×900).
    pub fn start() -> Browser {
        Browser::start_with(&[])
    }

    /// [`Browser::start`] with extra chromium arguments (e.g. a window size).
    pub fn start_with(extra_args: &[&str]) -> Browser {
        let chromium = proc::require("chromium", "chromium");
        let chromedriver = proc::require("chromedriver", "chromium-driver");
        let port = proc::free_port();
        let dir = proc::temp_dir("chromedriver");
        let profile = dir.path().join("profile");
        let mut cmd = std::process::Command::new(chromedriver);
        cmd.arg(format!("--port={port}")).arg(format!(
            "--log-path={}",
            dir.path().join("chromedriver.log").display()
        ));
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let client = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(60))
            .build()
            .expect("http client");
        let base = format!("http://127.0.0.1:{port}");
        let status_url = format!("{base}/status");
        let driver = Proc::start("chromedriver", cmd, dir, proc::READY_TIMEOUT, || {
            rt.block_on(async {
                match client.get(&status_url).send().await {
                    Ok(r) => r
                        .json::<Value>()
                        .await
                        .is_ok_and(|v| v["value"]["ready"] == true),
                    Err(_) => false,
                }
            })
        })
        .unwrap_or_else(|e| panic!("chromedriver did not start: {e}"));
        let mut args = vec![
            "--headless".to_string(),
            "--no-sandbox".into(),
            "--disable-gpu".into(),
            "--disable-dev-shm-usage".into(),
            "--disable-background-networking".into(),
            "--disable-component-update".into(),
            "--disable-sync".into(),
            "--no-first-run".into(),
            "--window-size=1280,900".into(),
            format!("--user-data-dir={}", profile.display()),
        ];
        args.extend(extra_args.iter().map(|a| a.to_string()));
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": chromium, "args": args},
        }}});
        let mut b = Browser {
            base,
            session: String::new(),
            client,
            rt,
            driver: Some(driver),
        };
        let v = b
            .raw("POST", "/session", Some(caps))
            .unwrap_or_else(|e| panic!("new session: {e}\n{}", b.logs()));
        b.session = v["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no sessionId in {v}"))
            .to_string();
        b
    }

    /// chromedriver's output, for failure messages.
    pub fn logs(&self) -> String {
        self.driver.as_ref().map(|d| d.logs()).unwrap_or_default()
    }

    fn raw(&self, method: &str, path: &str, body: Option<Value>) -> Result<Value, String> {
        let url = format!("{}{path}", self.base);
        self.rt.block_on(async {
            let req = match method {
                "GET" => self.client.get(&url),
                "DELETE" => self.client.delete(&url),
                _ => self.client.post(&url).json(&body.unwrap_or(json!({}))),
            };
            let r = req
                .send()
                .await
                .map_err(|e| format!("{method} {path}: {e}"))?;
            let status = r.status();
            let v: Value = r
                .json()
                .await
                .map_err(|e| format!("{method} {path}: {e}"))?;
            if status.is_success() {
                Ok(v["value"].clone())
            } else {
                Err(format!("{method} {path}: {status}: {}", v["value"]))
            }
        })
    }

    fn cmd(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        self.raw(method, &format!("/session/{}{path}", self.session), body)
            .unwrap_or_else(|e| panic!("webdriver: {e}"))
    }

    /// Navigates and waits for the load.
    pub fn goto(&self, url: &str) {
        self.cmd("POST", "/url", Some(json!({ "url": url })));
    }

    /// The first element matching `css`.
    pub fn find(&self, css: &str) -> String {
        let v = self.cmd(
            "POST",
            "/element",
            Some(json!({"using": "css selector", "value": css})),
        );
        v[ELEMENT]
            .as_str()
            .unwrap_or_else(|| panic!("no element id in {v}"))
            .to_string()
    }

    /// Clicks the element matching `css`.
    pub fn click(&self, css: &str) {
        let id = self.find(css);
        self.cmd("POST", &format!("/element/{id}/click"), None);
    }

    /// The rendered text of the element matching `css` (empty when it is hidden).
    pub fn text(&self, css: &str) -> String {
        let id = self.find(css);
        self.cmd("GET", &format!("/element/{id}/text"), None)
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// Types `text` into the element matching `css` (after clearing it).
    pub fn type_into(&self, css: &str, text: &str) {
        let id = self.find(css);
        self.cmd("POST", &format!("/element/{id}/clear"), None);
        self.cmd(
            "POST",
            &format!("/element/{id}/value"),
            Some(json!({ "text": text })),
        );
    }

    /// Runs `script` (a function body; `arguments` holds `args`) and returns its value.
    pub fn exec(&self, script: &str, args: Value) -> Value {
        self.cmd(
            "POST",
            "/execute/sync",
            Some(json!({"script": script, "args": args})),
        )
    }

    /// Runs `script` every 100 ms until `pred` accepts its value; panics after `within` with
    /// the last value.
    pub fn wait_for(
        &self,
        what: &str,
        within: Duration,
        script: &str,
        pred: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = Instant::now() + within;
        loop {
            let v = self.exec(script, json!([]));
            if pred(&v) {
                return v;
            }
            if Instant::now() > deadline {
                panic!("the page never showed {what} within {within:?}; last: {v}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Saves a PNG of the top of the page to `path` (directories created).
    pub fn screenshot(&self, path: &Path) {
        self.exec("window.scrollTo(0, 0); return 0;", json!([]));
        let v = self.cmd("GET", "/screenshot", None);
        let png = base64_decode(v.as_str().expect("base64 screenshot"));
        assert!(png.starts_with(b"\x89PNG"), "not a PNG");
        if let Some(d) = path.parent() {
            std::fs::create_dir_all(d).expect("screenshot dir");
        }
        std::fs::write(path, png).expect("write screenshot");
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if !self.session.is_empty() {
            let _ = self.raw("DELETE", &format!("/session/{}", self.session), None);
        }
        drop(self.driver.take());
    }
}

/// Where the browser tests put their screenshots: `target/screenshots/NAME.png`.
pub fn screenshot_path(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("target/screenshots")
        .join(format!("{name}.png"))
}

/// Standard base64 (RFC 4648, with padding) to bytes.
pub fn base64_decode(s: &str) -> Vec<u8> {
    use base64::Engine as _;
    let compact: String = s.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    base64::engine::general_purpose::STANDARD
        .decode(compact)
        .unwrap_or_else(|e| panic!("not base64: {e}"))
}
