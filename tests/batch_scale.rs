//! `facecast batch` at catalogue scale: the journal that lets a killed run resume, shards that split
//! a folder between machines and merge back into one report, and machine-readable progress.
//! The photos are the shared MTCNN fixture photos, copied under many names.

mod common;

use common::{data_with_mtcnn, facecast, os, recipe_file};
use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::fs;
use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant, SystemTime};

use facecast::io::TEMP_PREFIX;
use serde_json::Value;

fn fixture_photo(name: &str) -> Vec<u8> {
    fs::read(common::fixture_dir("mtcnn").join(name)).expect("fixture photo")
}

/// `facecast batch --recipe R --out OUT --json EXTRA... INPUT`, with its parsed report.
fn batch(data: &Path, recipe: &Path, out: &Path, extra: &[&OsStr], input: &Path) -> (Output, Value) {
    let mut args = vec![
        os("batch"),
        os("--recipe"),
        recipe.as_os_str(),
        os("--out"),
        out.as_os_str(),
        os("--json"),
    ];
    args.extend_from_slice(extra);
    args.push(input.as_os_str());
    let o = facecast(data, &args);
    let report = serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("a JSON report ({e}): {}", common::text(&o)));
    (o, report)
}

fn count(report: &Value, what: &str) -> u64 {
    report["counts"][what]
        .as_u64()
        .unwrap_or_else(|| panic!("counts.{what}: {report}"))
}

/// The exports in a folder by name (not the run's journal and report, not temporary files).
fn exports(dir: &Path) -> BTreeMap<String, SystemTime> {
    fs::read_dir(dir)
        .map(|entries| {
            entries
                .map(|e| e.expect("entry"))
                .map(|e| {
                    let name = e.file_name().to_string_lossy().into_owned();
                    let modified = e.metadata().and_then(|m| m.modified()).expect("mtime");
                    (name, modified)
                })
                .filter(|(name, _)| {
                    !name.starts_with("facecast-journal")
                        && !name.starts_with("facecast-report")
                        && !name.starts_with(TEMP_PREFIX)
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The journal's lines, parsed; a torn last line is left out.
fn journal_lines(out: &Path) -> Vec<Value> {
    fs::read_to_string(out.join("facecast-journal.jsonl"))
        .unwrap_or_default()
        .lines()
        .filter_map(|line| serde_json::from_str(line).ok())
        .collect()
}

fn resumed_flags(report: &Value) -> Vec<bool> {
    report["results"]
        .as_array()
        .expect("results")
        .iter()
        .map(|r| r["resumed"].as_bool().expect("resumed"))
        .collect()
}

#[test]
fn a_killed_batch_reruns_only_the_photos_it_had_not_exported() {
    let data = data_with_mtcnn();
    let work = tempfile::tempdir().expect("tempdir");
    let photos = work.path().join("photos");
    let out = work.path().join("out");
    fs::create_dir(&photos).expect("mkdir");
    let face = fixture_photo("astronaut.png");
    const N: usize = 8;
    for i in 0..N {
        fs::write(photos.join(format!("shot-{i}.png")), &face).expect("write");
    }
    let recipe = recipe_file(work.path(), |_| {});
    let mut child = common::spawn_batch(data.path(), &recipe, &out, &photos);
    let deadline = Instant::now() + Duration::from_secs(180);
    while journal_lines(&out).len() < 2 {
        assert!(Instant::now() < deadline, "nothing journaled within 180 s");
        assert!(
            child.try_wait().expect("wait").is_none(),
            "the run ended before it was killed"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().expect("SIGKILL");
    child.wait().expect("reap");

    let journaled: Vec<String> = journal_lines(&out)
        .iter()
        .filter(|l| l["status"] == "done")
        .map(|l| l["id"].as_str().expect("id").to_string())
        .collect();
    let before = exports(&out);
    assert!(
        journaled.len() >= 2 && journaled.len() < N,
        "killed mid-run: {journaled:?}"
    );
    for entry in journal_lines(&out) {
        assert_eq!(entry["source_sha256"].as_str().map(str::len), Some(64), "{entry}");
        assert_eq!(entry["recipe_sha256"].as_str().map(str::len), Some(64), "{entry}");
    }

    let (o, report) = batch(data.path(), &recipe, &out, &[], &photos);
    assert_eq!(o.status.code(), Some(0), "{}", common::text(&o));
    assert_eq!(count(&report, "done"), N as u64, "{report}");
    assert_eq!(count(&report, "resumed"), journaled.len() as u64, "{report}");
    for line in report["results"].as_array().expect("results") {
        let id = line["id"].as_str().expect("id");
        assert_eq!(
            line["resumed"].as_bool(),
            Some(journaled.iter().any(|j| j == id)),
            "{line}"
        );
    }
    // Only the rest was exported: what the killed run wrote is untouched, nothing is doubled.
    let after = exports(&out);
    assert_eq!(after.len(), before.len() + N - journaled.len(), "{after:?}");
    for (name, modified) in &before {
        assert_eq!(after.get(name), Some(modified), "{name} was not written again");
    }
    assert!(
        common::text(&o).contains(&format!("{} by an earlier run", journaled.len())),
        "{}",
        common::text(&o)
    );
}

#[test]
fn a_changed_photo_recipe_or_missing_output_is_exported_again_and_force_redoes_all() {
    let data = data_with_mtcnn();
    let work = tempfile::tempdir().expect("tempdir");
    let photos = work.path().join("photos");
    let out = work.path().join("out");
    fs::create_dir(&photos).expect("mkdir");
    let face = fixture_photo("astronaut.png");
    for i in 0..3 {
        fs::write(photos.join(format!("shot-{i}.png")), &face).expect("write");
    }
    fs::write(photos.join("notes.txt"), b"not a photo").expect("write");
    let recipe = recipe_file(work.path(), |_| {});

    let (o, first) = batch(data.path(), &recipe, &out, &[], &photos);
    assert_eq!(
        o.status.code(),
        Some(2),
        "notes.txt is skipped: {}",
        common::text(&o)
    );
    assert_eq!((count(&first, "done"), count(&first, "resumed")), (3, 0));
    let report_file: Value =
        serde_json::from_slice(&fs::read(out.join("facecast-report.json")).expect("report file"))
            .expect("json");
    assert_eq!(report_file, first, "--json prints the report the folder keeps");

    // A line torn by a kill is ignored, and the same command exports nothing.
    let journal = out.join("facecast-journal.jsonl");
    let mut torn = fs::read(&journal).expect("journal");
    torn.extend_from_slice(b"{\"id\":\"shot-");
    fs::write(&journal, torn).expect("tear");
    let written = exports(&out);
    let (o, again) = batch(data.path(), &recipe, &out, &[], &photos);
    assert_eq!(
        (count(&again, "done"), count(&again, "resumed")),
        (3, 3),
        "{}",
        common::text(&o)
    );
    assert_eq!(
        resumed_flags(&again),
        [false, true, true, true],
        "notes.txt first"
    );
    assert_eq!(exports(&out), written, "nothing written");
    assert!(
        common::text(&o).contains("unreadable line"),
        "{}",
        common::text(&o)
    );

    // A photo changed since it was exported, and an output deleted: those two are done again.
    let flipped =
        image::imageops::flip_horizontal(&image::load_from_memory(&face).expect("decode").to_rgb8());
    flipped.save(photos.join("shot-1.png")).expect("save");
    fs::remove_file(out.join("shot-2_vm.png")).expect("remove an output");
    let (o, changed) = batch(data.path(), &recipe, &out, &[], &photos);
    assert_eq!(o.status.code(), Some(2), "{}", common::text(&o));
    assert_eq!(resumed_flags(&changed), [false, true, false, false], "{changed}");
    assert_eq!(count(&changed, "done"), 3);
    assert!(common::text(&o).contains("2 to redo"), "{}", common::text(&o));
    // The journal's newest line for shot-1 is its new export: the next run resumes it.
    let (_, settled) = batch(data.path(), &recipe, &out, &[], &photos);
    assert_eq!(resumed_flags(&settled), [false, true, true, true], "{settled}");

    // Another recipe redoes every photo; so does --force with the same one.
    let other = recipe_file(work.path(), |r| r.faces.min_score = 0.75);
    let (_, recipe_changed) = batch(data.path(), &other, &out, &[], &photos);
    assert_eq!(resumed_flags(&recipe_changed), [false; 4], "{recipe_changed}");
    assert_eq!(count(&recipe_changed, "done"), 3);
    let (_, forced) = batch(data.path(), &other, &out, &[os("--force")], &photos);
    assert_eq!(resumed_flags(&forced), [false; 4], "{forced}");
    assert_eq!(count(&forced, "done"), 3);
}

/// What must match between two reports of the same inputs written into different folders.
fn comparable(report: &Value) -> Vec<(u64, String, String, String, Option<String>, u64)> {
    report["results"]
        .as_array()
        .expect("results")
        .iter()
        .map(|r| {
            let output = r["output"].as_str().map(|o| {
                Path::new(o)
                    .file_name()
                    .expect("name")
                    .to_string_lossy()
                    .into_owned()
            });
            (
                r["index"].as_u64().expect("index"),
                r["id"].as_str().expect("id").to_string(),
                r["input"].as_str().expect("input").to_string(),
                r["status"].as_str().expect("status").to_string(),
                output,
                r["faces"].as_u64().expect("faces"),
            )
        })
        .collect()
}

#[test]
fn three_shards_export_every_photo_once_and_merge_into_the_unsharded_report() {
    let data = data_with_mtcnn();
    let work = tempfile::tempdir().expect("tempdir");
    let photos = work.path().join("photos");
    fs::create_dir_all(photos.join("sub")).expect("mkdir");
    let face = fixture_photo("astronaut.png");
    for name in ["a.png", "b.png", "c.png", "d.png", "e.png", "sub/f.png"] {
        fs::write(photos.join(name), &face).expect("write");
    }
    fs::write(photos.join("cat.png"), fixture_photo("chelsea.png")).expect("write");
    fs::write(photos.join("notes.txt"), b"not a photo").expect("write");
    // `{index}` numbers by the place in the whole run, so shards name files as one run would.
    let recipe = recipe_file(work.path(), |r| r.export.naming = "{index}-{stem}.{ext}".into());

    let whole_out = work.path().join("whole");
    let (o, whole) = batch(
        data.path(),
        &recipe,
        &whole_out,
        &[os("--progress"), os("json")],
        &photos,
    );
    assert_eq!(o.status.code(), Some(2), "{}", common::text(&o));
    assert_eq!(whole["inputs_total"], 8);
    assert_eq!(count(&whole, "done"), 6);

    // --progress json: one object per finished input on stderr, in order, counting up.
    let stderr = String::from_utf8_lossy(&o.stderr);
    let progress: Vec<Value> = stderr
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    assert_eq!(progress.len(), 8, "{stderr}");
    for (i, line) in progress.iter().enumerate() {
        assert_eq!(line["finished"], i + 1, "{line}");
        assert_eq!(line["total"], 8, "{line}");
        assert_eq!(line["id"], whole["results"][i]["id"], "{line}");
        assert_eq!(line["status"], whole["results"][i]["status"], "{line}");
    }
    assert!(
        progress[7]["per_minute"].as_f64().is_some_and(|r| r > 0.0),
        "{}",
        progress[7]
    );

    let mut by_shard = Vec::new();
    let mut exported: BTreeMap<String, usize> = BTreeMap::new();
    for k in 1..=3 {
        let out = work.path().join(format!("shard-{k}"));
        let shard = format!("{k}/3");
        let (o, report) = batch(data.path(), &recipe, &out, &[os("--shard"), os(&shard)], &photos);
        assert!(matches!(o.status.code(), Some(0 | 2)), "{}", common::text(&o));
        assert_eq!(report["shard"]["index"], k, "{report}");
        assert!(out.join(format!("facecast-report.shard-{k}-of-3.json")).is_file());
        for name in exports(&out).into_keys() {
            *exported.entry(name).or_default() += 1;
        }
        by_shard.push(out);
    }
    let whole_names: Vec<String> = exports(&whole_out).into_keys().collect();
    assert_eq!(whole_names.len(), 6);
    assert_eq!(
        exported.keys().cloned().collect::<Vec<_>>(),
        whole_names,
        "the shards export what one run does"
    );
    assert!(
        exported.values().all(|&n| n == 1),
        "each photo exactly once: {exported:?}"
    );

    // The index a Kubernetes Indexed Job sets picks the same share as --shard.
    let env_out = work.path().join("from-env");
    let o = Command::new(env!("CARGO_BIN_EXE_facecast"))
        .env("FACECAST_DATA_DIR", data.path())
        .env("JOB_COMPLETION_INDEX", "1")
        .args(["--backend", "cpu", "batch", "--shards", "3", "--json", "--recipe"])
        .arg(&recipe)
        .arg("--out")
        .arg(&env_out)
        .arg(&photos)
        .output()
        .expect("run facecast");
    let from_env: Value = serde_json::from_slice(&o.stdout).expect("json");
    let second: Value = serde_json::from_slice(
        &fs::read(by_shard[1].join("facecast-report.shard-2-of-3.json")).expect("report"),
    )
    .expect("json");
    assert_eq!(comparable(&from_env), comparable(&second), "{}", common::text(&o));

    let merged_dir = work.path().join("merged");
    let mut args = vec![os("batch"), os("merge-reports")];
    args.extend(by_shard.iter().map(|p| p.as_os_str()));
    args.extend([os("--out"), merged_dir.as_os_str(), os("--json")]);
    let o = facecast(data.path(), &args);
    assert_eq!(o.status.code(), Some(2), "not all done: {}", common::text(&o));
    let merged: Value = serde_json::from_slice(&o.stdout).expect("merged json");
    assert_eq!(comparable(&merged), comparable(&whole));
    assert_eq!(merged["counts"], whole["counts"]);
    assert_eq!(merged["recipe_sha256"], whole["recipe_sha256"]);
    assert!(merged_dir.join("facecast-report.json").is_file());

    // A shard missing is a gap, and a gap is refused.
    let o = facecast(
        data.path(),
        &[
            os("batch"),
            os("merge-reports"),
            by_shard[0].as_os_str(),
            by_shard[1].as_os_str(),
            os("--out"),
            merged_dir.as_os_str(),
        ],
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(
        common::text(&o).contains("shard 3/3 is missing"),
        "{}",
        common::text(&o)
    );
}
