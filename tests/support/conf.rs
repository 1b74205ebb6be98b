//! A typed builder for the proxy's TOML config, so tests say what they configure instead of
//! splicing strings: `Conf::builtin(90.0, 10.0).server("idle_timeout_ms", 1500).to_string()`.
//!
//! It writes a `toml_edit` document: every value goes through the TOML encoder (quoting, floats),
//! and tables are created on first use. `Conf::base()` is the server/auth/admin part every test
//! shares; the constructors add the usual models and split on top.

use std::fmt;

use toml_edit::{value, Array, ArrayOfTables, DocumentMut, Item, Table, Value};

use super::{ADMIN_SHA, KEY_SHA, PLAIN_SHA};

#[derive(Clone, Debug, Default)]
pub struct Conf {
    doc: DocumentMut,
}

/// What the setters accept: integers, floats, strings, booleans, arrays and raw values.
pub trait IntoValue {
    fn into_value(self) -> Value;
}

macro_rules! into_value {
    ($($t:ty => |$x:ident| $e:expr),* $(,)?) => {
        $(impl IntoValue for $t {
            fn into_value(self) -> Value {
                let $x = self;
                $e
            }
        })*
    };
}

into_value! {
    i32 => |x| Value::from(i64::from(x)),
    i64 => |x| Value::from(x),
    u64 => |x| Value::from(i64::try_from(x).expect("u64 too large for TOML")),
    f64 => |x| num(x),
    bool => |x| Value::from(x),
    &str => |x| Value::from(x),
    String => |x| Value::from(x),
    Value => |x| x,
    Array => |x| Value::Array(x),
}

/// A TOML number: integral `f64`s are written as integers (`weight = 90`), others as floats.
pub fn num(x: f64) -> Value {
    if x.fract() == 0.0 && x.abs() < 1e15 {
        Value::from(x as i64)
    } else {
        Value::from(x)
    }
}

impl Conf {
    /// Loopback listeners on port 0, `max_body_bytes = 4096`, the demo key (may override the
    /// variant), the plain key, and the `ops` admin token. No models, no split.
    pub fn base() -> Conf {
        let mut c = Conf { doc: DocumentMut::new() };
        c = c.server("listen", "127.0.0.1:0").server("admin_listen", "127.0.0.1:0").server("max_body_bytes", 4096);
        c = c.key("demo", KEY_SHA, |k| k.set("allow_override", true)).key("plain", PLAIN_SHA, |k| k);
        c.admin_token("ops", ADMIN_SHA)
    }

    /// Two builtin models, `rec-v2-2` (champion) and `rec-v2-3` (challenger), split by weight
    /// under salt `rec-2026-11`.
    pub fn builtin(champion: f64, challenger: f64) -> Conf {
        Conf::base()
            .model_builtin("rec-v2-2", "v2.2.0")
            .model_builtin("rec-v2-3", "v2.3.0")
            .split("rec-2026-11")
            .champion("champion", "rec-v2-2", champion)
            .variant("challenger", "rec-v2-3", challenger)
    }

    /// One HTTP model `champ` taking all traffic, plus a builtin `spare` nobody is routed to.
    pub fn http_champion(url: &str, timeout_ms: u64) -> Conf {
        Conf::base()
            .model_http("champ", "v1", url)
            .model("champ", "timeout_ms", timeout_ms)
            .model_builtin("spare", "v0")
            .split("champ-only")
            .champion("champion", "champ", 100.0)
            .variant("spare", "spare", 0.0)
    }

    /// The top-level `version` the admin API and reloads report.
    pub fn version(mut self, v: u64) -> Conf {
        self.doc.insert("version", Item::Value(v.into_value()));
        self
    }

    /// Sets `key` in `[server]`.
    pub fn server(self, key: &str, v: impl IntoValue) -> Conf {
        self.set(&format!("server.{key}"), v)
    }

    /// Sets a value by dotted path (`"throttle.burst"`), creating the tables on the way.
    pub fn set(mut self, path: &str, v: impl IntoValue) -> Conf {
        let (tables, key) = split_path(path);
        table_at(self.doc.as_table_mut(), &tables).insert(key, Item::Value(v.into_value()));
        self
    }

    /// Removes a value or table by dotted path (nothing if absent), then the tables on the path
    /// that it left empty.
    pub fn remove(mut self, path: &str) -> Conf {
        let (tables, key) = split_path(path);
        table_at(self.doc.as_table_mut(), &tables).remove(key);
        for n in (0..tables.len()).rev() {
            if table_at(self.doc.as_table_mut(), &tables[..=n]).is_empty() {
                table_at(self.doc.as_table_mut(), &tables[..n]).remove(tables[n]);
            }
        }
        self
    }

    /// Replaces the `[[auth.keys]]` list with nothing (add keys back with [`Conf::key`]).
    pub fn without_keys(self) -> Conf {
        self.remove("auth.keys")
    }

    /// Appends an `[[auth.keys]]` entry; `f` adds its options (`allow_override`, rate limits).
    pub fn key(mut self, name: &str, sha256: &str, f: impl FnOnce(Section) -> Section) -> Conf {
        let mut t = Table::new();
        t.insert("name", value(name));
        t.insert("sha256", value(sha256));
        let t = f(Section(t)).0;
        push(table_at(self.doc.as_table_mut(), &["auth"]), "keys", t);
        self
    }

    /// Appends an `[[admin.tokens]]` entry.
    pub fn admin_token(mut self, name: &str, sha256: &str) -> Conf {
        let mut t = Table::new();
        t.insert("name", value(name));
        t.insert("sha256", value(sha256));
        push(table_at(self.doc.as_table_mut(), &["admin"]), "tokens", t);
        self
    }

    /// `[models.NAME]` with the builtin backend.
    pub fn model_builtin(self, name: &str, version: &str) -> Conf {
        self.model(name, "version", version).model(name, "backend", "builtin")
    }

    /// `[models.NAME]` with the HTTP backend at `url`.
    pub fn model_http(self, name: &str, version: &str, url: &str) -> Conf {
        self.model(name, "version", version).model(name, "backend", "http").model(name, "url", url)
    }

    /// `[models.NAME]` on SageMaker (region us-east-1) at `endpoint_url`.
    pub fn model_sagemaker(self, name: &str, version: &str, endpoint: &str, endpoint_url: &str) -> Conf {
        self.model(name, "version", version)
            .model(name, "backend", "sagemaker")
            .model(name, "endpoint", endpoint)
            .model(name, "target_variant", "AllTraffic")
            .model(name, "region", "us-east-1")
            .model(name, "endpoint_url", endpoint_url)
    }

    /// Sets one option of `[models.NAME]` (`timeout_ms`, …).
    pub fn model(mut self, name: &str, key: &str, v: impl IntoValue) -> Conf {
        table_at(self.doc.as_table_mut(), &["models", name]).insert(key, Item::Value(v.into_value()));
        self
    }

    /// A fresh `[split]` with `salt` and no variants.
    pub fn split(mut self, salt: &str) -> Conf {
        let mut t = Table::new();
        t.insert("salt", value(salt));
        self.doc.insert("split", Item::Table(t));
        self
    }

    /// Appends the champion variant.
    pub fn champion(self, name: &str, model: &str, weight: f64) -> Conf {
        self.variant_with(name, model, weight, |v| v.set("champion", true))
    }

    /// Appends a (non-champion) variant.
    pub fn variant(self, name: &str, model: &str, weight: f64) -> Conf {
        self.variant_with(name, model, weight, |v| v)
    }

    /// Appends a variant with extra options (`slot`, …).
    pub fn variant_with(mut self, name: &str, model: &str, weight: f64, f: impl FnOnce(Section) -> Section) -> Conf {
        let mut t = Table::new();
        t.insert("name", value(name));
        t.insert("model", value(model));
        t.insert("weight", Item::Value(num(weight)));
        push(table_at(self.doc.as_table_mut(), &["split"]), "variants", f(Section(t)).0);
        self
    }

    /// Appends an interleaving arm comparing models `a` and `b` (`interleave = [a, b]`); `f` sets
    /// its options (`interleave_wait_ms`, `k`, …).
    pub fn interleave_arm(
        mut self,
        name: &str,
        (a, b): (&str, &str),
        weight: f64,
        f: impl FnOnce(Section) -> Section,
    ) -> Conf {
        let mut t = Table::new();
        t.insert("name", value(name));
        t.insert("interleave", Item::Value(Value::Array([a, b].iter().copied().collect())));
        t.insert("weight", Item::Value(num(weight)));
        push(table_at(self.doc.as_table_mut(), &["split"]), "variants", f(Section(t)).0);
        self
    }

    /// Sets the weight of the variant called `name`.
    pub fn weight(mut self, name: &str, weight: f64) -> Conf {
        let variants = self.doc["split"]["variants"].as_array_of_tables_mut().expect("no [[split.variants]]");
        let v = variants.iter_mut().find(|v| v["name"].as_str() == Some(name)).expect("no such variant");
        v.insert("weight", Item::Value(num(weight)));
        self
    }

    /// Appends a `[[shadow]]` mirroring to `model`; `f` sets its options.
    pub fn shadow(mut self, model: &str, f: impl FnOnce(Section) -> Section) -> Conf {
        let mut t = Table::new();
        t.insert("model", value(model));
        push(self.doc.as_table_mut(), "shadow", f(Section(t)).0);
        self
    }

    /// Sets `[guard]` options.
    pub fn guard(mut self, f: impl FnOnce(Section) -> Section) -> Conf {
        let t = std::mem::take(table_at(self.doc.as_table_mut(), &["guard"]));
        *table_at(self.doc.as_table_mut(), &["guard"]) = f(Section(t)).0;
        self
    }

    /// `[guard.ramp]`: the weight steps and how long each must hold (`"1s"`, `"500ms"`).
    pub fn ramp(self, steps: &[f64], hold: &str) -> Conf {
        let steps: Array = steps.iter().map(|s| num(*s)).collect();
        self.set("guard.ramp.steps", steps).set("guard.ramp.hold", hold)
    }

    /// `[throttle]` for every key.
    pub fn throttle(self, rate_per_second: f64, burst: u64) -> Conf {
        self.set("throttle.rate_per_second", num(rate_per_second)).set("throttle.burst", burst)
    }

    /// `[source]`: the hot part of the config from a DynamoDB item (region us-east-1).
    pub fn source_dynamodb(self, table: &str, key: &str, poll_interval_ms: u64, endpoint_url: &str) -> Conf {
        self.set("source.kind", "dynamodb")
            .set("source.table", table)
            .set("source.key", key)
            .set("source.poll_interval_ms", poll_interval_ms)
            .set("source.region", "us-east-1")
            .set("source.endpoint_url", endpoint_url)
    }

    /// Merges a TOML fragment (for the rare setting nothing above covers); its tables are merged
    /// into existing ones and its arrays of tables appended.
    pub fn extra(mut self, fragment: &str) -> Conf {
        let other: DocumentMut = fragment.parse().unwrap_or_else(|e| panic!("bad TOML fragment: {e}\n{fragment}"));
        merge(self.doc.as_table_mut(), other.as_table());
        self
    }

    /// Only the hot-reloadable part (no `[server]`, no admin tokens): what a DynamoDB item holds.
    pub fn hot_document(self) -> String {
        self.remove("server").remove("admin.tokens").to_string()
    }
}

impl fmt::Display for Conf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.doc)
    }
}

/// The options of one table (a key, a variant, a shadow, `[guard]`), with typed setters for the
/// ones tests use and [`Section::set`] for the rest.
pub struct Section(Table);

impl Section {
    pub fn set(mut self, key: &str, v: impl IntoValue) -> Section {
        self.0.insert(key, Item::Value(v.into_value()));
        self
    }
    pub fn min_requests(self, n: u64) -> Section {
        self.set("min_requests", n)
    }
    pub fn evaluate_every_ms(self, ms: u64) -> Section {
        self.set("evaluate_every_ms", ms)
    }
    pub fn error_rate(self, rate: f64) -> Section {
        self.set("error_rate", rate)
    }
    pub fn error_window_secs(self, s: u64) -> Section {
        self.set("error_window_secs", s)
    }
    pub fn latency_ms(self, ms: u64) -> Section {
        self.set("latency_ms", ms)
    }
    pub fn latency_window_secs(self, s: u64) -> Section {
        self.set("latency_window_secs", s)
    }
    pub fn invocation_errors_per_minute(self, n: u64) -> Section {
        self.set("invocation_errors_per_minute", n)
    }
    pub fn webhook_url(self, url: &str) -> Section {
        self.set("webhook_url", url)
    }
    pub fn sample_percent(self, p: f64) -> Section {
        self.set("sample_percent", num(p))
    }
    pub fn timeout_ms(self, ms: u64) -> Section {
        self.set("timeout_ms", ms)
    }
}

fn split_path(path: &str) -> (Vec<&str>, &str) {
    let mut parts: Vec<&str> = path.split('.').collect();
    let key = parts.pop().unwrap();
    (parts, key)
}

/// The table at `path` under `t`, created (as a standard table) where missing.
fn table_at<'a>(t: &'a mut Table, path: &[&str]) -> &'a mut Table {
    let Some((first, rest)) = path.split_first() else { return t };
    // Implicit: a table holding only sub-tables or arrays of tables prints no header of its own.
    let item = t.entry(first).or_insert_with(|| {
        let mut t = Table::new();
        t.set_implicit(true);
        Item::Table(t)
    });
    let next = item.as_table_mut().unwrap_or_else(|| panic!("`{first}` is not a table"));
    table_at(next, rest)
}

fn push(t: &mut Table, key: &str, entry: Table) {
    let item = t.entry(key).or_insert_with(|| Item::ArrayOfTables(ArrayOfTables::new()));
    item.as_array_of_tables_mut().unwrap_or_else(|| panic!("`{key}` is not an array of tables")).push(entry);
}

fn merge(into: &mut Table, from: &Table) {
    for (k, v) in from.iter() {
        match (into.get_mut(k), v) {
            (Some(Item::Table(a)), Item::Table(b)) => merge(a, b),
            (Some(Item::ArrayOfTables(a)), Item::ArrayOfTables(b)) => b.iter().for_each(|t| a.push(t.clone())),
            _ => {
                into.insert(k, v.clone());
            }
        }
    }
}
