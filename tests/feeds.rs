//! `facecast screen --csv`: a product feed whose rows point at a local HTTP server (photos, a 404,
//! an HTML page, a page disguised as a JPEG, a slow answer, a huge file, a busy server) and at local
//! files. Every row must land in exactly one of faces.csv, no_faces.csv and failed.csv, and a second
//! run must download nothing again.

mod common;

use common::facecast;
use std::collections::{BTreeMap, HashMap};
use std::ffi::OsStr;
use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;

fn os(s: &str) -> &OsStr {
    OsStr::new(s)
}

/// How often each path was answered with a body (a full download), by path.
type Served = Arc<Mutex<HashMap<String, usize>>>;

fn fixture(name: &str) -> Vec<u8> {
    fs::read(common::fixture_dir("mtcnn").join(name)).expect("fixture")
}

fn answer(mut stream: TcpStream, served: Served, photo: Arc<Vec<u8>>, cat: Arc<Vec<u8>>) {
    let mut reader = BufReader::new(stream.try_clone().expect("clone"));
    let mut request = String::new();
    if reader.read_line(&mut request).is_err() {
        return;
    }
    let path = request.split_whitespace().nth(1).unwrap_or("/").to_string();
    let mut if_none_match = None;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 || line.trim().is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':')
            && name.trim().eq_ignore_ascii_case("if-none-match")
        {
            if_none_match = Some(value.trim().to_string());
        }
    }
    let count = |p: &str| {
        let mut served = served.lock().expect("lock");
        let n = served.entry(p.to_string()).or_default();
        *n += 1;
        *n
    };
    let reply = |stream: &mut TcpStream, status: &str, headers: &[(&str, &str)], body: &[u8]| {
        let mut head = format!("HTTP/1.1 {status}\r\nConnection: close\r\n");
        for (name, value) in headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        if !headers.iter().any(|(n, _)| *n == "Content-Length") {
            head.push_str(&format!("Content-Length: {}\r\n", body.len()));
        }
        head.push_str("\r\n");
        let _ = stream.write_all(head.as_bytes());
        let _ = stream.write_all(body);
    };
    match path.as_str() {
        "/astronaut.png" | "/chelsea.png" => {
            let (etag, body) = if path == "/astronaut.png" {
                ("\"a1\"", &photo)
            } else {
                ("\"c1\"", &cat)
            };
            if if_none_match.as_deref() == Some(etag) {
                reply(&mut stream, "304 Not Modified", &[("ETag", etag)], &[]);
            } else {
                count(&path);
                reply(
                    &mut stream,
                    "200 OK",
                    &[("Content-Type", "image/png"), ("ETag", etag)],
                    body,
                );
            }
        }
        "/busy.png" => {
            // Busy the first time, then the photo: a retry gets it.
            if count("/busy.png#asked") == 1 {
                reply(&mut stream, "503 Service Unavailable", &[], b"busy");
            } else if if_none_match.as_deref() == Some("\"b1\"") {
                reply(&mut stream, "304 Not Modified", &[("ETag", "\"b1\"")], &[]);
            } else {
                count(&path);
                reply(
                    &mut stream,
                    "200 OK",
                    &[("Content-Type", "image/png"), ("ETag", "\"b1\"")],
                    &photo,
                );
            }
        }
        "/page" => reply(
            &mut stream,
            "200 OK",
            &[("Content-Type", "text/html; charset=utf-8")],
            b"<html><body>Product not found</body></html>",
        ),
        "/disguised.jpg" => reply(
            &mut stream,
            "200 OK",
            &[("Content-Type", "image/jpeg")],
            b"<!DOCTYPE html><html><body>Please log in</body></html>",
        ),
        "/slow.png" => {
            std::thread::sleep(Duration::from_secs(4));
            reply(&mut stream, "200 OK", &[("Content-Type", "image/png")], &photo);
        }
        "/huge.png" => reply(
            &mut stream,
            "200 OK",
            &[("Content-Type", "image/png"), ("Content-Length", "900000000")],
            &photo[..1000],
        ),
        _ => reply(&mut stream, "404 Not Found", &[], b"not found"),
    }
}

/// A server on 127.0.0.1 answering each connection on its own thread; returns its base URL.
fn serve(served: Served) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let photo = Arc::new(fixture("astronaut.png"));
    let cat = Arc::new(fixture("chelsea.png"));
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let (served, photo, cat) = (served.clone(), photo.clone(), cat.clone());
            std::thread::spawn(move || answer(stream, served, photo, cat));
        }
    });
    base
}

/// A CSV's rows as maps from column to cell.
fn rows(path: &Path) -> Vec<BTreeMap<String, String>> {
    let text = fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let records = facecast::io::csv::parse(&text).expect("csv");
    let header = records[0].fields.clone();
    records[1..]
        .iter()
        .map(|r| header.iter().cloned().zip(r.fields.iter().cloned()).collect())
        .collect()
}

#[test]
fn every_row_of_a_feed_lands_in_one_list_and_a_rerun_downloads_nothing() {
    let data = tempfile::tempdir().expect("tempdir");
    let o = facecast(
        data.path(),
        &[
            os("weights"),
            os("import"),
            os("mtcnn"),
            common::fixture_dir("mtcnn").as_os_str(),
        ],
    );
    assert!(o.status.success(), "{}", common::text(&o));
    let served: Served = Arc::default();
    let base = serve(served.clone());
    let work = tempfile::tempdir().expect("tempdir");
    fs::create_dir(work.path().join("local")).expect("mkdir");
    fs::write(work.path().join("local/model.png"), fixture("astronaut.png")).expect("write");
    let feed = work.path().join("feed.csv");
    let rows_in = [
        ("p1", format!("{base}/astronaut.png"), "faces", ""),
        ("p2", format!("{base}/chelsea.png"), "no_faces", ""),
        ("p3", format!("{base}/missing.png"), "failed", "HTTP 404"),
        ("p4", format!("{base}/page"), "failed", "text/html"),
        ("p5", format!("{base}/disguised.jpg"), "failed", "HTML page"),
        ("p6", format!("{base}/slow.png"), "failed", "2 tries"),
        ("p7", format!("{base}/huge.png"), "failed", "larger than"),
        ("p8", "local/model.png".to_string(), "faces", ""),
        ("p9", String::new(), "failed", "empty"),
        ("p10", format!("{base}/astronaut.png"), "faces", ""),
        ("p11", format!("{base}/busy.png"), "faces", ""),
        ("p12", "local/gone.png".to_string(), "failed", "gone.png"),
    ];
    let mut text = String::from("sku,image,title\n");
    for (id, url, _, _) in &rows_in {
        text.push_str(&format!("{id},{url},\"Dress {id}, red\"\n"));
    }
    fs::write(&feed, text).expect("write the feed");
    let out = work.path().join("screened");
    let screen = || {
        facecast(
            data.path(),
            &[
                os("screen"),
                os("--csv"),
                feed.as_os_str(),
                os("--url-column"),
                os("image"),
                os("--id-column"),
                os("sku"),
                os("--timeout"),
                os("1"),
                os("--tries"),
                os("2"),
                os("--out"),
                out.as_os_str(),
                os("--json"),
            ],
        )
    };

    let first = screen();
    assert_eq!(
        first.status.code(),
        Some(2),
        "some rows failed: {}",
        common::text(&first)
    );
    let mut listed: BTreeMap<String, (String, BTreeMap<String, String>)> = BTreeMap::new();
    for list in ["faces", "no_faces", "failed"] {
        for row in rows(&out.join(format!("{list}.csv"))) {
            let sku = row["sku"].clone();
            assert!(
                listed.insert(sku.clone(), (list.to_string(), row)).is_none(),
                "{sku} is in two lists"
            );
        }
    }
    assert_eq!(listed.len(), rows_in.len(), "every row is listed: {listed:?}");
    for (id, _, list, says) in &rows_in {
        let (got, row) = &listed[*id];
        assert_eq!(got, list, "{id}: {row:?}");
        assert!(row["reason"].contains(says), "{id}: {row:?}");
        assert_eq!(
            row["title"],
            format!("Dress {id}, red"),
            "the feed's columns are kept"
        );
        if *list == "faces" {
            assert!(row["face_count"].parse::<usize>().expect("count") >= 1, "{row:?}");
            assert!(row["best_score"].parse::<f32>().expect("score") >= 0.7, "{row:?}");
        }
    }
    let summary: Value =
        serde_json::from_slice(&fs::read(out.join("summary.json")).expect("summary")).expect("json");
    assert_eq!(summary["rows"], 12);
    assert_eq!(summary["faces"], 4, "{summary}");
    assert_eq!(summary["no_faces"], 1, "{summary}");
    assert_eq!(summary["failed"], 7, "{summary}");
    let downloads = served.lock().expect("lock").clone();
    assert_eq!(
        downloads.get("/astronaut.png"),
        Some(&1),
        "a URL listed twice is fetched once"
    );

    let second = screen();
    assert_eq!(second.status.code(), Some(2), "{}", common::text(&second));
    let again: Value = serde_json::from_slice(&second.stdout).expect("json summary");
    assert_eq!(again["downloaded"], 0, "{again}");
    let after = served.lock().expect("lock").clone();
    for path in ["/astronaut.png", "/chelsea.png", "/busy.png"] {
        assert_eq!(
            after.get(path),
            downloads.get(path),
            "{path} was not downloaded again"
        );
    }
}

#[test]
fn a_batch_runs_a_feed_and_reports_every_row_by_its_id() {
    let data = tempfile::tempdir().expect("tempdir");
    let o = facecast(
        data.path(),
        &[
            os("weights"),
            os("import"),
            os("mtcnn"),
            common::fixture_dir("mtcnn").as_os_str(),
        ],
    );
    assert!(o.status.success(), "{}", common::text(&o));
    let base = serve(Arc::default());
    let work = tempfile::tempdir().expect("tempdir");
    fs::write(work.path().join("model.png"), fixture("astronaut.png")).expect("write");
    let feed = work.path().join("feed.csv");
    fs::write(
        &feed,
        format!("sku,image\nA,{base}/astronaut.png\nB,{base}/missing.png\nC,model.png\n"),
    )
    .expect("write the feed");
    let mut recipe = facecast::pipeline::recipe::Recipe::default();
    recipe.swap.enabled = false;
    let recipe_path = work.path().join("recipe.json");
    recipe.save(&recipe_path).expect("save");
    let out = work.path().join("out");
    let o = facecast(
        data.path(),
        &[
            os("batch"),
            os("--recipe"),
            recipe_path.as_os_str(),
            os("--csv"),
            feed.as_os_str(),
            os("--url-column"),
            os("image"),
            os("--id-column"),
            os("sku"),
            os("--out"),
            out.as_os_str(),
            os("--json"),
        ],
    );
    assert_eq!(o.status.code(), Some(2), "{}", common::text(&o));
    let report: Value = serde_json::from_slice(&o.stdout).expect("json");
    let got: Vec<(String, String)> = report["results"]
        .as_array()
        .expect("results")
        .iter()
        .map(|r| {
            (
                r["id"].as_str().expect("id").to_string(),
                r["status"].as_str().expect("status").to_string(),
            )
        })
        .collect();
    let want = [("A", "done"), ("B", "failed"), ("C", "done")].map(|(a, b)| (a.to_string(), b.to_string()));
    assert_eq!(got, want, "{report}");
    let reason = report["results"][1]["reason"].as_str().expect("reason");
    assert!(
        reason.contains("HTTP 404") && reason.contains("missing.png"),
        "{reason}"
    );
    assert!(
        out.join("astronaut_vm.png").is_file(),
        "the URL's file name names the export"
    );
}

/// The window: a feed picked, its photo column chosen by label, imported on the worker from the
/// local server (one row a 404), screened; then the library's two lists, with the feed's columns.
#[test]
fn the_window_imports_a_feed_and_exports_the_two_lists() {
    use egui_kittest::Harness;
    use egui_kittest::kittest::Queryable;
    use facecast::app::feed_ui::{FEED_WINDOW, IMPORT_BUTTON};
    use facecast::app::{FacecastApp, StartOptions};
    use std::time::Instant;

    let base = serve(Served::default());
    let work = tempfile::tempdir().expect("tempdir");
    let data = work.path().join("data");
    facecast::weights::store::WeightsStore::open(Some(data.clone()))
        .expect("store")
        .import("mtcnn", &[common::fixture_dir("mtcnn")])
        .expect("MTCNN from the fixtures");
    let csv = work.path().join("feed.csv");
    fs::write(
        &csv,
        format!(
            "sku,title,image_url\nA1,Spring jacket,{base}/astronaut.png\nB2,\"Cat, plush\",{base}/chelsea.png\nC3,Gone,{base}/gone.png\n"
        ),
    )
    .expect("write the feed");
    let start = StartOptions {
        data_dir: Some(data.clone()),
        ..Default::default()
    };
    let mut harness = Harness::builder()
        .with_size([1280.0, 800.0])
        .build_eframe(move |cc| FacecastApp::new(&cc.egui_ctx, facecast::compute::Compute::cpu(), start));
    fn wait(harness: &mut Harness<'_, FacecastApp>, what: &str, done: &dyn Fn(&FacecastApp) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(120);
        while !done(harness.state()) {
            assert!(Instant::now() < deadline, "{what} did not happen within 120 s");
            harness.step();
            std::thread::sleep(Duration::from_millis(10));
        }
        harness.run_steps(2);
    }
    harness.step();
    harness.state_mut().choose_feed(csv.clone());
    harness.run_steps(2);
    harness.get_by_role_and_label(egui::accesskit::Role::Window, FEED_WINDOW);
    let column = |h: &Harness<'_, FacecastApp>| h.state().state().feed.draft.as_ref().map(|d| d.url_column);
    assert_eq!(column(&harness), Some(2), "the URL column is guessed");
    harness.get_by_label("title").click();
    harness.run_steps(2);
    assert_eq!(column(&harness), Some(1));
    harness.get_by_label("image_url").click();
    harness.run_steps(2);
    assert_eq!(column(&harness), Some(2));
    harness.get_by_label(IMPORT_BUTTON).click();
    wait(&mut harness, "the import and the screening", &|app| {
        app.state().feed.last.is_some() && common::all_screened(app, 2)
    });
    let last = harness.state().state().feed.last.clone().expect("a summary");
    assert_eq!((last.rows, last.photos), (3, 2), "{last:?}");
    assert!(
        last.failed.len() == 1 && last.failed[0].contains("gone.png") && last.failed[0].contains("404"),
        "{last:?}"
    );
    assert!(
        harness
            .query_by_label("3 rows: 2 photos, 1 without a photo")
            .is_some()
    );

    let out = work.path().join("lists");
    harness
        .state_mut()
        .export_screening_lists(out.clone())
        .expect("the lists are written");
    wait(&mut harness, "writing the lists", &|app| {
        app.state().feed.lists_job.is_none() && app.worker().is_idle()
    });
    let header = |name: &str| {
        fs::read_to_string(out.join(name))
            .expect("a list")
            .lines()
            .next()
            .map(str::to_string)
    };
    assert_eq!(
        header("faces.csv").as_deref(),
        Some("sku,title,image_url,face_count,best_score,reason"),
        "the columns of facecast screen"
    );
    let faces = rows(&out.join("faces.csv"));
    let no_faces = rows(&out.join("no_faces.csv"));
    assert_eq!(faces.len(), 1, "{faces:?}");
    assert_eq!(faces[0]["sku"], "A1");
    assert_eq!(faces[0]["image_url"], format!("{base}/astronaut.png"));
    assert_eq!(faces[0]["face_count"], "1");
    assert_eq!(no_faces.len(), 1, "{no_faces:?}");
    assert_eq!(no_faces[0]["title"], "Cat, plush");
    assert_eq!(no_faces[0]["face_count"], "0");
    assert!(
        !out.join("failed.csv").exists(),
        "the window writes the two lists"
    );
}
