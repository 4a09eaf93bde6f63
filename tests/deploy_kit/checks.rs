//! Every shipped config, and every `toml` block of the guides, through the
//! real `portico check`; and each guide's config is its `config/` file.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::{app_dir, deploy_env, repo};

/// Runs `portico check --config file` with the deployment environment;
/// panics with its output unless it succeeds and prints `ok`.
fn check(file: &Path, what: &str) {
    let app = app_dir();
    let out = Command::new(crate::support::binary::exe())
        .arg("check")
        .arg("--config")
        .arg(file)
        .current_dir(&app)
        .env_remove("PORTICO_CONFIG")
        .env_remove("RUST_LOG")
        .envs(deploy_env(&app))
        .output()
        .expect("run portico check");
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(
        out.status.success() && stdout.trim_end().ends_with("ok"),
        "{what}: `portico check` failed ({}):\n{stdout}\n{stderr}",
        out.status
    );
}

fn files(dir: &str, ext: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(repo().join(dir))
        .expect("read dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == ext))
        .collect();
    v.sort();
    v
}

/// The fenced blocks of `lang` in a Markdown text, in order.
fn blocks(markdown: &str, lang: &str) -> Vec<String> {
    let open = format!("```{lang}");
    let mut out = Vec::new();
    let mut cur: Option<String> = None;
    for line in markdown.lines() {
        match &mut cur {
            None if line.trim_end() == open => cur = Some(String::new()),
            None => {}
            Some(_) if line.trim_end() == "```" => out.extend(cur.take()),
            Some(b) => {
                b.push_str(line);
                b.push('\n');
            }
        }
    }
    assert!(cur.is_none(), "an unclosed ```{lang} block");
    out
}

#[test]
fn every_config_in_config_dir_passes_portico_check() {
    let all = files("config", "toml");
    assert!(all.len() >= 7, "{all:?}");
    for f in &all {
        check(f, &f.display().to_string());
    }
}

#[test]
fn every_toml_block_in_the_guides_passes_portico_check() {
    let dir = crate::support::TempDir::new("guide-blocks");
    let mut n = 0;
    for guide in files("docs", "md") {
        let text = std::fs::read_to_string(&guide).expect("read guide");
        for (i, block) in blocks(&text, "toml").into_iter().enumerate() {
            let f = dir.path().join(format!(
                "{}-{i}.toml",
                guide.file_stem().unwrap().to_string_lossy()
            ));
            std::fs::write(&f, block).expect("write block");
            check(&f, &format!("{} toml block #{i}", guide.display()));
            n += 1;
        }
    }
    assert!(n >= 6, "expected a config per guide, found {n} blocks");
}

/// "The config, [`config/X`](…):" is followed by X, verbatim.
#[test]
fn each_guide_shows_its_config_file_verbatim() {
    let guides = files("docs", "md");
    let mut shown = Vec::new();
    for guide in &guides {
        let text = std::fs::read_to_string(guide).expect("read guide");
        let Some(at) = text.find("The config, [`config/") else {
            continue;
        };
        let rest = &text[at + "The config, [`".len()..];
        let name = &rest[..rest.find('`').expect("closing backtick")];
        let block = blocks(rest, "toml")
            .into_iter()
            .next()
            .expect("a toml block");
        let file = std::fs::read_to_string(repo().join(name)).expect("the named config");
        assert_eq!(
            block,
            file,
            "{}: its toml block differs from {name}",
            guide.display()
        );
        shown.push(name.to_string());
    }
    for want in [
        "config/ec2-nginx-supervisor.toml",
        "config/docker-caddy.toml",
        "config/dev-laravel.toml",
        "config/kinsta-single-port.toml",
        "config/kong-supabase.toml",
    ] {
        assert!(shown.iter().any(|s| s == want), "no guide shows {want}");
    }
}

#[test]
fn the_index_links_every_guide() {
    let index = std::fs::read_to_string(repo().join("docs/README.md")).expect("docs/README.md");
    for guide in files("docs", "md") {
        let name = guide.file_name().unwrap().to_string_lossy().into_owned();
        if name != "README.md" {
            assert!(
                index.contains(&format!("]({name})")),
                "docs/README.md does not link {name}"
            );
        }
    }
}

#[test]
fn blocks_are_read_from_markdown() {
    let md = "a\n```toml\nx = 1\n```\n```sh\nls\n```\n```toml\n[y]\n```\n";
    assert_eq!(blocks(md, "toml"), ["x = 1\n", "[y]\n"]);
    assert_eq!(blocks(md, "sh"), ["ls\n"]);
}
