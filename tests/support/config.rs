//! The one builder of regdns configs in tests: the `[server]` block (listen, admin, token
//! file, state dir and any other key) and then the sections (zones, views, instances,
//! endpoints, raw TOML for the rare ones) in the order they are added. Paths are relative to
//! the config's directory; [`super::regdns::Regdns::launch`] writes it there.
//!
//! Tests whose subject is config parsing (`tests/config_errors.rs`) keep their literal inputs.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use super::proc;

/// A regdns config under construction. Cloning it is cheap; [`Config::render`] gives the TOML.
#[derive(Clone, Debug)]
pub struct Config {
    /// The first (usually only) DNS address, UDP and TCP.
    pub dns: SocketAddr,
    /// The admin API address.
    pub admin: SocketAddr,
    /// `[server]` keys and their TOML values, in order.
    server: Vec<(String, String)>,
    /// Everything after `[server]`, in the order added.
    sections: Vec<String>,
}

/// A free address on 127.0.0.1 (UDP and TCP).
pub fn free_addr() -> SocketAddr {
    SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), proc::free_port())
}

impl Config {
    /// DNS on a free port of 127.0.0.1; see [`Config::on`].
    pub fn new() -> Config {
        Config::on(free_addr())
    }

    /// DNS on `dns`, admin API on a free port of 127.0.0.1, `admin_token_file =
    /// "admin.token"`, `state_dir = "state"`.
    pub fn on(dns: SocketAddr) -> Config {
        let admin = free_addr();
        Config {
            dns,
            admin,
            server: vec![
                ("listen".into(), format!("[\"{dns}\"]")),
                ("admin".into(), format!("\"{admin}\"")),
                ("admin_token_file".into(), "\"admin.token\"".into()),
                ("state_dir".into(), "\"state\"".into()),
            ],
            sections: Vec::new(),
        }
    }

    /// Only `listen = [dns]` in `[server]` (for configs parsed in-process, never served).
    pub fn listen_only(dns: SocketAddr) -> Config {
        Config {
            dns,
            admin: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0),
            server: vec![("listen".into(), format!("[\"{dns}\"]"))],
            sections: Vec::new(),
        }
    }

    /// The admin API on `admin`.
    pub fn admin(mut self, admin: SocketAddr) -> Config {
        self.admin = admin;
        self.server("admin", &format!("\"{admin}\""))
    }

    /// Sets the `[server]` key `key` to the TOML value `value` (e.g. `"true"`, `"\"x\""`),
    /// replacing it if present, else appending it.
    pub fn server(mut self, key: &str, value: &str) -> Config {
        match self.server.iter_mut().find(|(k, _)| k == key) {
            Some(kv) => kv.1 = value.to_string(),
            None => self.server.push((key.to_string(), value.to_string())),
        }
        self
    }

    /// Sets a `[server]` key to a TOML string.
    pub fn server_str(self, key: &str, value: &str) -> Config {
        let v = format!("\"{value}\"");
        self.server(key, &v)
    }

    /// Removes a `[server]` key.
    pub fn without_server(mut self, key: &str) -> Config {
        self.server.retain(|(k, _)| k != key);
        self
    }

    /// The admin token file (relative to the config's directory).
    pub fn token_file(&self) -> String {
        self.server
            .iter()
            .find(|(k, _)| k == "admin_token_file")
            .map(|(_, v)| v.trim_matches('"').to_string())
            .unwrap_or_else(|| "admin.token".into())
    }

    /// The state directory (relative to the config's directory).
    pub fn state_dir(&self) -> String {
        self.server
            .iter()
            .find(|(k, _)| k == "state_dir")
            .map(|(_, v)| v.trim_matches('"').to_string())
            .unwrap_or_else(|| "state".into())
    }

    /// `[[zone]]` with `origin` served from `file`.
    pub fn zone(self, origin: &str, file: &str) -> Config {
        self.zone_with(origin, file, "")
    }

    /// [`Config::zone`] with more lines of the zone's table (e.g. `allow_transfer`).
    pub fn zone_with(self, origin: &str, file: &str, lines: &str) -> Config {
        self.raw(&format!(
            "[[zone]]\norigin = \"{origin}\"\nfile = \"{file}\"\n{}",
            with_newline(lines)
        ))
    }

    /// `[[view]]` `name` for the `clients` networks.
    pub fn view(self, name: &str, clients: &[&str]) -> Config {
        self.view_with(name, clients, "")
    }

    /// [`Config::view`] with more lines of the view's table (e.g. `ecs_from`).
    pub fn view_with(self, name: &str, clients: &[&str], lines: &str) -> Config {
        let clients = clients
            .iter()
            .map(|c| format!("\"{c}\""))
            .collect::<Vec<_>>()
            .join(", ");
        self.raw(&format!(
            "[[view]]\nname = \"{name}\"\nclients = [{clients}]\n{}",
            with_newline(lines)
        ))
    }

    /// `[[instance]]` `id` with the TOML lines `body` (url, probe settings...).
    pub fn instance(self, id: &str, body: &str) -> Config {
        self.raw(&format!(
            "[[instance]]\nid = \"{id}\"\n{}",
            with_newline(body)
        ))
    }

    /// `[[endpoint]]` `name` with the TOML `body`: its keys, then its sub-tables
    /// (`[endpoint.targets]`, `[[endpoint.publish]]`...).
    pub fn endpoint(self, name: &str, body: &str) -> Config {
        self.raw(&format!(
            "[[endpoint]]\nname = \"{name}\"\n{}",
            with_newline(body)
        ))
    }

    /// Raw TOML appended as is (`[[tsig_key]]`, `[privatezone]`, `[cluster]`...).
    pub fn raw(mut self, toml: &str) -> Config {
        self.sections.push(with_newline(toml));
        self
    }

    /// The TOML text.
    pub fn render(&self) -> String {
        let mut s = String::from("[server]\n");
        for (k, v) in &self.server {
            s.push_str(&format!("{k} = {v}\n"));
        }
        for section in &self.sections {
            s.push('\n');
            s.push_str(section);
        }
        s
    }
}

impl Default for Config {
    fn default() -> Self {
        Config::new()
    }
}

fn with_newline(s: &str) -> String {
    if s.is_empty() || s.ends_with('\n') {
        s.to_string()
    } else {
        format!("{s}\n")
    }
}

/// `targets` as the TOML of `[endpoint.targets]`: per view, the list of
/// `(instance, answer)` where answer is e.g. `cname = "x."` or `a = ["10.0.0.1"]`.
pub fn targets(views: &[(&str, &[(&str, &str)])]) -> String {
    let mut s = String::from("[endpoint.targets]\n");
    for (view, list) in views {
        s.push_str(&format!("{view} = [\n"));
        for (instance, answer) in *list {
            s.push_str(&format!("  {{ instance = \"{instance}\", {answer} }},\n"));
        }
        s.push_str("]\n");
    }
    s
}
