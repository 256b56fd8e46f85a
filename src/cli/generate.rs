//! `hbd generate man|completions DIR` (hidden): the files the Debian package ships,
//! made from the program itself so they cannot drift from it.
//!
//! - man pages: hbd(8) and one hbd-VERB(8) per subcommand from the clap definitions
//!   (clap_mangen), and cluster.toml(5) from the configuration reference in README.md
//!   (the one place it is written) with examples/cluster.toml as its example;
//! - shell completions for bash, zsh and fish (clap_complete).
//!
//! Nothing generated is committed: `contrib/deb/build.sh` runs this before packaging.

use std::path::{Path, PathBuf};

use clap::CommandFactory;
use clap_complete::Shell;
use roff::{Inline, Roff, bold, italic, roman};

use crate::error::{Error, Result};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub what: What,
}

#[derive(Debug, clap::Subcommand)]
pub enum What {
    /// Man pages hbd.8, hbd-VERB.8 and cluster.toml.5 into DIR.
    Man { dir: PathBuf },
    /// Completions for bash (hbd.bash), zsh (_hbd) and fish (hbd.fish) into DIR.
    Completions { dir: PathBuf },
}

const README: &str = include_str!("../../README.md");
const EXAMPLE: &str = include_str!("../../examples/cluster.toml");

pub fn run(args: Args) -> Result<()> {
    match args.what {
        What::Man { dir } => man(&dir),
        What::Completions { dir } => completions(&dir),
    }
}

fn write(dir: &Path, name: &str, text: &[u8]) -> Result<()> {
    let path = dir.join(name);
    std::fs::write(&path, text)
        .map_err(|e| Error::io(format!("cannot write {}", path.display()), e))
}

fn completions(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir)
        .map_err(|e| Error::io(format!("cannot create {}", dir.display()), e))?;
    // Without the hidden subcommands (this one): completions offer what `--help` shows.
    let full = super::Cli::command();
    let mut cmd = clap::Command::new("hbd")
        .version(env!("CARGO_PKG_VERSION"))
        .args(full.get_arguments().cloned())
        .subcommands(full.get_subcommands().filter(|s| !s.is_hide_set()).cloned());
    for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
        clap_complete::generate_to(shell, &mut cmd, "hbd", dir)
            .map_err(|e| Error::io(format!("cannot write {shell} completions"), e))?;
    }
    Ok(())
}

fn man(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir)
        .map_err(|e| Error::io(format!("cannot create {}", dir.display()), e))?;
    let version = env!("CARGO_PKG_VERSION");
    let cmd = super::Cli::command().version(version);
    write(dir, "hbd.8", &hbd_page(&cmd)?)?;
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        let name = format!("hbd-{}", sub.get_name());
        let page = clap_mangen::Man::new(sub.clone().name(name.clone()).version(version))
            .section("8")
            .source(format!("hbd {version}"))
            .manual("System Administration");
        let mut buf = Vec::new();
        page.render(&mut buf)
            .map_err(|e| Error::io("cannot render a man page", e))?;
        write(dir, &format!("{name}.8"), &buf)?;
    }
    write(dir, "cluster.toml.5", cluster_toml_page(version).as_bytes())
}

fn hbd_page(cmd: &clap::Command) -> Result<Vec<u8>> {
    let version = env!("CARGO_PKG_VERSION");
    let man = clap_mangen::Man::new(cmd.clone())
        .section("8")
        .source(format!("hbd {version}"))
        .manual("System Administration");
    let mut buf = Vec::new();
    let render = |buf: &mut Vec<u8>| -> std::io::Result<()> {
        man.render_title(buf)?;
        man.render_name_section(buf)?;
        man.render_synopsis_section(buf)?;
        let mut r = Roff::new();
        r.control("SH", ["DESCRIPTION"]).text([roman(
            "hbd is a failover daemon in the model of Linux-HA Heartbeat v1: nodes send each \
             other signed heartbeats over several links, and when a node falls silent the \
             survivors take over its resource groups (virtual IPs, filesystems, systemd units, \
             Heartbeat scripts). It runs as hbd.service; its configuration is one file, \
             identical on every node, described in cluster.toml(5).",
        )]);
        r.to_writer(buf)?;
        man.render_options_section(buf)?;
        man.render_subcommands_section(buf)?;
        let mut r = Roff::new();
        r.control("SH", ["EXIT STATUS"]);
        for (code, meaning) in [
            ("0", "success (hbd run: after a clean stop)"),
            (
                "1",
                "the configuration or the key file is invalid or unreadable",
            ),
            ("2", "bad usage"),
            ("3", "runtime failure, e.g. no heartbeat link can be opened"),
        ] {
            r.control("TP", [])
                .text([bold(code)])
                .text([roman(meaning)]);
        }
        r.control("SH", ["FILES"]);
        for (file, what) in [
            (
                "/etc/hbd/cluster.toml",
                "the cluster configuration, see cluster.toml(5)",
            ),
            (
                "/etc/hbd/authkey",
                "the shared keys, mode 0600 (hbd keygen writes it)",
            ),
            (
                "/usr/share/hbd/cluster.schema.json",
                "JSON schema of cluster.toml for editors",
            ),
            (
                "/usr/share/doc/hbd/examples/cluster.toml",
                "an example configuration",
            ),
        ] {
            r.control("TP", []).text([bold(file)]).text([roman(what)]);
        }
        r.control("SH", ["SEE ALSO"]).text([
            bold("cluster.toml"),
            roman("(5), "),
            bold("systemctl"),
            roman("(1), "),
            bold("journalctl"),
            roman("(1); "),
            roman("hbd-check(8), hbd-import(8), hbd-keygen(8), hbd-run(8), hbd-schema(8)"),
        ]);
        r.to_writer(buf)?;
        man.render_version_section(buf)
    };
    render(&mut buf).map_err(|e| Error::io("cannot render a man page", e))?;
    Ok(buf)
}

/// cluster.toml(5): the README's "Configuration reference" section in roff.
pub fn cluster_toml_page(version: &str) -> String {
    let mut r = Roff::new();
    r.control(
        "TH",
        [
            "CLUSTER.TOML",
            "5",
            "",
            &format!("hbd {version}"),
            "File Formats",
        ],
    );
    r.control("SH", ["NAME"])
        .text([roman("cluster.toml - hbd cluster configuration")]);
    r.control("SH", ["SYNOPSIS"])
        .text([bold("/etc/hbd/cluster.toml")]);
    r.control("SH", ["DESCRIPTION"]).text([roman(
        "One TOML file, byte-identical on every node of the cluster, holds the whole \
         configuration of hbd(8): timing, authentication, the heartbeat links, the nodes \
         and the resource groups. hbd check validates it and names file:line:column for \
         every mistake.",
    )]);
    r.control("SH", ["REFERENCE"]);
    markdown(&mut r, reference_section());
    r.control("SH", ["EXAMPLE"]);
    r.control("nf", []);
    r.control("RS", ["4"]);
    for line in EXAMPLE.lines() {
        r.text([roman(line)]);
    }
    r.control("RE", []);
    r.control("fi", []);
    r.control("SH", ["SEE ALSO"]).text([
        bold("hbd"),
        roman("(8); /usr/share/hbd/cluster.schema.json, the JSON schema of this file"),
    ]);
    r.render()
}

/// The README from "## Configuration reference" up to the next "## " heading.
fn reference_section() -> &'static str {
    let start = README
        .find("\n## Configuration reference\n")
        .map(|i| i + "\n## Configuration reference\n".len())
        .unwrap_or(README.len());
    let rest = &README[start..];
    &rest[..rest.find("\n## ").unwrap_or(rest.len())]
}

/// The little Markdown the reference uses: paragraphs, `### ` headings, tables, `code`,
/// **bold**, *italic*, code fences.
fn markdown(r: &mut Roff, text: &str) {
    let mut para: Vec<&str> = Vec::new();
    let flush = |r: &mut Roff, para: &mut Vec<&str>| {
        if !para.is_empty() {
            r.control("PP", []).text(inline(&para.join(" ")));
            para.clear();
        }
    };
    let mut fence = false;
    for line in text.lines() {
        if line.starts_with("```") {
            flush(r, &mut para);
            if fence {
                r.control("RE", []).control("fi", []);
            } else {
                r.control("PP", []).control("nf", []).control("RS", ["4"]);
            }
            fence = !fence;
        } else if fence {
            r.text([roman(line)]);
        } else if let Some(h) = line.strip_prefix("### ") {
            flush(r, &mut para);
            r.control("SS", [h]);
        } else if line.starts_with('|') {
            flush(r, &mut para);
            let cells: Vec<&str> = line
                .trim()
                .trim_matches('|')
                .split('|')
                .map(str::trim)
                .collect();
            if cells
                .iter()
                .all(|c| c.chars().all(|ch| ch == '-' || ch == ':'))
            {
                continue; // the separator row
            }
            table_row(r, &cells);
        } else if line.trim().is_empty() {
            flush(r, &mut para);
        } else {
            para.push(line.trim());
        }
    }
    flush(r, &mut para);
}

fn table_row(r: &mut Roff, cells: &[&str]) {
    // Header rows name the columns; they carry nothing a reader of the page needs.
    if matches!(cells.first(), Some(&"Key") | Some(&"Check")) {
        return;
    }
    match cells {
        [key, default, meaning] if key.starts_with("**") => {
            r.control("SS", [key.trim_matches('*')]);
            let note = [*default, *meaning]
                .iter()
                .filter(|c| !c.is_empty())
                .copied()
                .collect::<Vec<_>>()
                .join("; ");
            if !note.is_empty() {
                r.control("PP", []).text(inline(&note));
            }
        }
        [key, default, meaning] => {
            let mut head = inline(key);
            let default = strip(default);
            head.push(roman(if default == "required" || default.contains(':') {
                format!(" ({default})")
            } else {
                format!(" (default: {default})")
            }));
            r.control("TP", []).text(head).text(inline(meaning));
        }
        [check, severity] => {
            let mut line = inline(check);
            line.push(roman(": "));
            line.extend(inline(severity));
            r.control("IP", ["\\(bu", "2"]).text(line);
        }
        other => {
            r.control("PP", []).text(inline(&other.join(" ")));
        }
    }
}

/// Markdown without its markup, for a default such as `"1s"`.
fn strip(s: &str) -> String {
    s.replace(['`', '*'], "")
}

/// `code` and **bold** as bold, *text* as italic, [text](url) as text.
fn inline(s: &str) -> Vec<Inline> {
    let mut out = Vec::new();
    let mut rest = s;
    let mut plain = String::new();
    while let Some(c) = rest.chars().next() {
        let (marker, font): (&str, fn(String) -> Inline) = if rest.starts_with("**") {
            ("**", |t| bold(t))
        } else if c == '`' {
            ("`", |t| bold(t))
        } else if c == '*' {
            ("*", |t| italic(t))
        } else if c == '[' {
            if let Some((text, after)) = link(rest) {
                plain.push_str(text);
                rest = after;
                continue;
            }
            plain.push(c);
            rest = &rest[1..];
            continue;
        } else {
            plain.push(c);
            rest = &rest[c.len_utf8()..];
            continue;
        };
        let body = &rest[marker.len()..];
        match body.find(marker) {
            Some(end) => {
                if !plain.is_empty() {
                    out.push(roman(std::mem::take(&mut plain)));
                }
                out.push(font(body[..end].to_string()));
                rest = &body[end + marker.len()..];
            }
            None => {
                plain.push_str(marker);
                rest = body;
            }
        }
    }
    if !plain.is_empty() {
        out.push(roman(plain));
    }
    out
}

/// `[text](target)` at the start of `s`: the text and what follows the link.
fn link(s: &str) -> Option<(&str, &str)> {
    let close = s.find("](")?;
    let end = s[close..].find(')')? + close;
    Some((&s[1..close], &s[end + 1..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reference_becomes_a_man_page() {
        let page = cluster_toml_page("0");
        assert!(reference_section().contains("| `keepalive` |"));
        // Every key of the reference table is in the page, none of the markup is.
        for key in [
            "keepalive",
            "key_file",
            "auto_failback",
            "arp_interval",
            "restart_window",
        ] {
            assert!(page.contains(&format!("\\fB{key}\\fR")), "{key}");
        }
        assert!(page.contains("\n.SS [[group.resource]]\n"));
        assert!(page.contains("\n.SS Cross-checks\n"));
        let reference = &page[..page.find(".SH EXAMPLE").unwrap()];
        assert!(
            !reference.contains("**") && !reference.contains('`') && !reference.contains("|---")
        );
    }

    #[test]
    fn inline_markup() {
        let v = inline("a `b` **c** *d* [e](f) g");
        assert_eq!(
            v,
            vec![
                roman("a "),
                bold("b"),
                roman(" "),
                bold("c"),
                roman(" "),
                italic("d"),
                roman(" e g")
            ]
        );
    }
}
