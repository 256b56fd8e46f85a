//! Every structural mistake of a cluster.toml in one pass: unknown keys, wrong
//! types, bad values.
//!
//! serde stops at the first error of a document. When that happens, this module
//! walks the parsed (spanned) document against the model instead: each section
//! and each `[[link]]`, `[[node]]`, `[[group]]` and `[[group.resource]]` item is
//! deserialized on its own, with the model's own types, so nothing here repeats
//! the model. When an item fails because of one key, that key is set aside and
//! the item is tried again, so three typos in one table give three errors. Spans
//! come from the document, so each error names the line:column it is about.

use serde::de::DeserializeOwned;
use toml::Spanned;
use toml::de::{DeTable, DeValue, ValueDeserializer};

use super::diagnostic::{Diagnostic, Position, hint_for_serde_message};
use super::model::{
    Auth, BroadcastLink, ClusterSection, Failover, Fence, Group, IpResource, Link, MountResource,
    MulticastLink, Node, Resource, ScriptResource, SerialLink, Timing, UnicastLink, UnitResource,
};

/// Top-level keys of cluster.toml, in the order serde lists them.
const TOP: &[&str] = &[
    "cluster", "timing", "auth", "failover", "link", "node", "group",
];

/// At most this many errors are reported for one item (a table of garbage
/// would otherwise give one per key, which helps nobody).
const PER_ITEM: usize = 16;

type Value<'i> = Spanned<DeValue<'i>>;

/// The structural errors of a document whose deserialization failed.
pub fn errors(text: &str, root: &Spanned<DeTable<'_>>) -> Vec<Diagnostic> {
    let mut w = Walk {
        text,
        lines: std::iter::once(0)
            .chain(text.match_indices('\n').map(|(i, _)| i + 1))
            .collect(),
        out: Vec::new(),
    };
    let table = root.get_ref();
    for (k, v) in table.iter() {
        let key = k.get_ref().as_ref();
        match key {
            "cluster" => w.item::<ClusterSection>("cluster", v),
            "timing" => w.item::<Timing>("timing", v),
            "auth" => w.item::<Auth>("auth", v),
            "failover" => w.item::<Failover>("failover", v),
            "link" => w.array::<Link>("link", v, Walk::link),
            "node" => w.array::<Node>("node", v, Walk::node),
            "group" => w.groups(v),
            other => {
                let message = format!(
                    "unknown field `{other}`, expected one of {}",
                    TOP.iter()
                        .map(|t| format!("`{t}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                );
                let mut d = Diagnostic::error(other, message.clone());
                d.position = Some(w.at(k.span().start));
                d.help = hint_for_serde_message(&message);
                w.out.push(d);
            }
        }
    }
    if !table.contains_key("cluster") {
        let mut d = Diagnostic::error("", "missing field `cluster`")
            .with_help("start the file with a [cluster] table that sets name");
        d.position = Some(Position { line: 1, column: 1 });
        w.out.push(d);
    }
    w.out
}

struct Walk<'a> {
    text: &'a str,
    /// Byte offset of every line start, so each position costs O(log n).
    lines: Vec<usize>,
    out: Vec<Diagnostic>,
}

impl Walk<'_> {
    fn at(&self, offset: usize) -> Position {
        let text = self.text;
        let mut off = offset.min(text.len());
        while !text.is_char_boundary(off) {
            off -= 1;
        }
        let line = self.lines.partition_point(|&s| s <= off).max(1);
        let start = self.lines[line - 1];
        Position {
            line,
            column: text[start..off].chars().count() + 1,
        }
    }
}

impl Walk<'_> {
    /// An array of tables: each item on its own; anything else: serde's error for it.
    fn array<T: DeserializeOwned>(
        &mut self,
        path: &str,
        v: &Value<'_>,
        each: fn(&mut Self, &str, &Value<'_>),
    ) {
        match v.get_ref() {
            DeValue::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    each(self, &format!("{path}[{i}]"), item);
                }
            }
            _ => self.item::<Vec<T>>(path, v),
        }
    }

    /// The `kind` of a `kind = ...` table, and the table without it.
    fn kind<'i>(v: &Value<'i>) -> Option<(String, Value<'i>)> {
        let DeValue::Table(t) = v.get_ref() else {
            return None;
        };
        let kind = match t.get("kind")?.get_ref() {
            DeValue::String(k) => k.to_string(),
            _ => return None,
        };
        let mut rest = t.clone();
        rest.remove("kind");
        Some((kind, Spanned::new(v.span(), DeValue::Table(rest))))
    }

    /// A `[[link]]`: as the struct of its kind, whose errors carry spans (serde's
    /// tagged enums lose them); without a known kind, as the enum (which says so).
    fn link(&mut self, path: &str, v: &Value<'_>) {
        match Self::kind(v) {
            Some((k, rest)) if k == "udp-unicast" => self.item::<UnicastLink>(path, &rest),
            Some((k, rest)) if k == "udp-broadcast" => self.item::<BroadcastLink>(path, &rest),
            Some((k, rest)) if k == "udp-multicast" => self.item::<MulticastLink>(path, &rest),
            Some((k, rest)) if k == "serial" => self.item::<SerialLink>(path, &rest),
            _ => self.item::<Link>(path, v),
        }
    }

    /// A `[[group.resource]]`, the same way as a link.
    fn resource(&mut self, path: &str, v: &Value<'_>) {
        match Self::kind(v) {
            Some((k, rest)) if k == "ip" => self.item::<IpResource>(path, &rest),
            Some((k, rest)) if k == "unit" => self.item::<UnitResource>(path, &rest),
            Some((k, rest)) if k == "mount" => self.item::<MountResource>(path, &rest),
            Some((k, rest)) if k == "script" => self.item::<ScriptResource>(path, &rest),
            _ => self.item::<Resource>(path, v),
        }
    }

    /// A `[[node]]`, and its `fence` table apart (so its keys are named in full).
    fn node(&mut self, path: &str, v: &Value<'_>) {
        let DeValue::Table(t) = v.get_ref() else {
            return self.item::<Node>(path, v);
        };
        let mut rest = t.clone();
        let fence = rest.remove("fence");
        self.item::<Node>(path, &Spanned::new(v.span(), DeValue::Table(rest)));
        if let Some(f) = fence {
            self.item::<Fence>(&format!("{path}.fence"), &f);
        }
    }

    /// `[[group]]` items, and the `[[group.resource]]` items of each apart.
    fn groups(&mut self, v: &Value<'_>) {
        let DeValue::Array(items) = v.get_ref() else {
            return self.item::<Vec<Group>>("group", v);
        };
        for (i, item) in items.iter().enumerate() {
            let path = format!("group[{i}]");
            let DeValue::Table(t) = item.get_ref() else {
                self.item::<Group>(&path, item);
                continue;
            };
            let mut rest = t.clone();
            let resources = rest.remove("resource");
            self.item::<Group>(&path, &Spanned::new(item.span(), DeValue::Table(rest)));
            if let Some(r) = resources {
                self.array::<Resource>(&format!("{path}.resource"), &r, Walk::resource);
            }
        }
    }

    /// Deserialize one item as `T`; on an error caused by one key, report it, set
    /// the key aside and try again.
    fn item<T: DeserializeOwned>(&mut self, path: &str, v: &Value<'_>) {
        let mut v = v.clone();
        let mut found: Vec<Diagnostic> = Vec::new();
        // Keys already reported and set aside: their absence is no new mistake.
        let mut set_aside: Vec<String> = Vec::new();
        for _ in 0..PER_ITEM {
            let e = match T::deserialize(ValueDeserializer::from(v.clone())) {
                Ok(_) => break,
                Err(e) => e,
            };
            let (d, culprit) = self.diagnose(path, &v, &e);
            found.push(d);
            let removed = match (&culprit, v.get_mut()) {
                (Some(k), DeValue::Table(t)) => t.remove(k.as_str()).is_some(),
                _ => false,
            };
            match culprit {
                Some(k) if removed => set_aside.push(format!("missing field `{k}`")),
                _ => break,
            }
        }
        // `devise = ...` is reported as unknown with "did you mean `device`?"; the
        // missing `device` that follows is the same mistake.
        let suggested: Vec<String> = found
            .iter()
            .filter_map(|d| d.help.as_deref())
            .filter_map(|h| h.strip_prefix("did you mean `")?.strip_suffix("`?"))
            .map(|f| format!("missing field `{f}`"))
            .chain(set_aside)
            .collect();
        self.out.extend(
            found
                .into_iter()
                .filter(|d| !suggested.contains(&d.message)),
        );
    }

    /// The diagnostic for one serde error of the item at `path`, and the item's
    /// key that caused it (None: the item as a whole, e.g. a missing field).
    fn diagnose(
        &self,
        path: &str,
        v: &Value<'_>,
        e: &toml::de::Error,
    ) -> (Diagnostic, Option<String>) {
        let text = self.text;
        let mut message = e.message().split_whitespace().collect::<Vec<_>>().join(" ");
        let item_span = v.span();
        let span = e.span().unwrap_or(item_span.clone());
        let written = text.get(span.clone()).unwrap_or("").trim();
        message = super::reword(&message, written);
        let table = match v.get_ref() {
            DeValue::Table(t) => Some(t),
            _ => None,
        };
        let mut d = Diagnostic::error(path, "");
        d.position = Some(self.at(item_span.start));
        let mut culprit = None;
        let inside = inner_path(v.get_ref(), &span).map(|rest| (format!("{path}.{rest}"), rest));
        if let Some(field) = super::unknown_field(&message).map(str::to_string) {
            // Point at the offending key itself.
            if let Some((k, _)) = table.and_then(|t| t.get_key_value(field.as_str())) {
                d.position = Some(self.at(k.span().start));
            }
            d.key = format!("{path}.{field}");
            culprit = Some(field);
        } else if let (true, Some((full, rest))) = (span != item_span, inside) {
            // serde's own span: the value the error is about.
            d.key = full;
            d.position = Some(self.at(span.start));
            let top = rest.split(['.', '[']).next().unwrap_or(&rest);
            culprit = Some(top.to_string());
        } else if let Some((name, at)) = table.and_then(|t| quoted_child(t, text, &message)) {
            // Errors of `kind = ...` tables reach serde without spans; find the
            // value the message quotes.
            d.key = format!("{path}.{name}");
            d.position = Some(self.at(at));
            culprit = Some(name);
        }
        d.help = hint_for_serde_message(&message).or_else(|| super::hint_for_key(&d.key, &message));
        d.message = message;
        (d, culprit)
    }
}

/// The path, relative to `v`, of the innermost value whose span holds `span`
/// (`address.lan`, `args[1]`); None when only `v` itself does.
fn inner_path(v: &DeValue<'_>, span: &std::ops::Range<usize>) -> Option<String> {
    let holds =
        |s: std::ops::Range<usize>| s.start <= span.start && span.end <= s.end.max(s.start + 1);
    let join = |head: String, rest: Option<String>| match rest {
        Some(r) if r.starts_with('[') => format!("{head}{r}"),
        Some(r) => format!("{head}.{r}"),
        None => head,
    };
    match v {
        // A dotted key's implicit table (`address.lan = ...`) has no span of its
        // own that covers its values: look inside tables whatever their span.
        DeValue::Table(t) => t.iter().find_map(|(k, val)| {
            let inner = inner_path(val.get_ref(), span);
            match (holds(val.span()), inner) {
                (_, Some(rest)) => Some(join(k.get_ref().to_string(), Some(rest))),
                (true, None) => Some(k.get_ref().to_string()),
                (false, None) => None,
            }
        }),
        DeValue::Array(a) => a
            .iter()
            .enumerate()
            .find(|(_, val)| holds(val.span()))
            .map(|(i, val)| join(format!("[{i}]"), inner_path(val.get_ref(), span))),
        _ => None,
    }
}

/// The one direct child of `t` whose written value `message` quotes (as `"text"`
/// or `` `text` ``), with the offset of that value.
fn quoted_child(t: &DeTable<'_>, text: &str, message: &str) -> Option<(String, usize)> {
    let mut found = t.iter().filter(|(_, value)| {
        let written = text.get(value.span()).unwrap_or("").trim();
        let inner = written
            .strip_prefix(['"', '\''])
            .and_then(|w| w.strip_suffix(['"', '\'']))
            .unwrap_or(written);
        !inner.is_empty()
            && (message.contains(&format!("\"{inner}\""))
                || message.contains(&format!("`{inner}`")))
    });
    let (k, v) = found.next()?;
    if found.next().is_some() {
        return None;
    }
    Some((k.get_ref().to_string(), v.span().start))
}
