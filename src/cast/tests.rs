//! The library on disk: round trips, names, lineage, deletion, and damaged entries.

use std::fs;

use image::{Rgb, RgbImage};

use super::library::{name_key, read_latent, write_latent};
use super::*;

fn face(seed: u8, side: u32) -> RgbImage {
    RgbImage::from_fn(side, side, |x, y| Rgb([seed, (x % 251) as u8, (y % 241) as u8]))
}

fn latent(rows: usize, dim: usize, offset: f32) -> Latent {
    Latent::new(
        (0..rows * dim).map(|i| i as f32 * 0.01 + offset).collect(),
        rows,
        dim,
    )
    .unwrap()
}

fn generated(name: &str, seed: u32) -> NewVirtualModel {
    NewVirtualModel {
        name: name.to_string(),
        parent: None,
        origin: Origin::Generated(GeneratedOrigin {
            seed: Some(seed),
            truncation: 0.7,
            noise: NoiseSpec::Seeded { seed },
            z_rng: model::Z_RNG.to_string(),
            generator: GeneratorInfo {
                weights: "stylegan2-ffhq".into(),
                size: 64,
                style_dim: 8,
                n_latent: 10,
                reduced: true,
            },
            latent_file: String::new(),
            edits: Vec::new(),
        }),
        face: face(seed as u8, 64),
        face_landmarks: [
            [20.0, 25.0],
            [44.0, 25.0],
            [32.0, 36.0],
            [22.0, 46.0],
            [42.0, 46.0],
        ],
        landmarks_from: LandmarkSource::FfhqTemplate,
        crops: vec![face(seed as u8 + 1, CROP_SIDE)],
        latent: Some(latent(10, 8, seed as f32)),
        identity: None,
    }
}

fn imported(name: &str, photos: usize) -> NewVirtualModel {
    let sources = (0..photos)
        .map(|i| SourcePhoto {
            path: format!("/photos/p{i}.jpg").into(),
            file_name: format!("p{i}.jpg"),
            sha256: "00".repeat(32),
            width: 640,
            height: 480,
            face_index: 0,
            faces_found: 1,
            bbox: [10.0, 20.0, 110.0, 140.0],
            score: 0.99,
            landmarks: [
                [40.0, 60.0],
                [80.0, 60.0],
                [60.0, 80.0],
                [45.0, 100.0],
                [75.0, 100.0],
            ],
        })
        .collect();
    NewVirtualModel {
        name: name.to_string(),
        parent: None,
        origin: Origin::Imported(ImportedOrigin { sources }),
        face: face(9, 128),
        face_landmarks: [
            [40.0, 60.0],
            [80.0, 60.0],
            [60.0, 80.0],
            [45.0, 100.0],
            [75.0, 100.0],
        ],
        landmarks_from: LandmarkSource::Mtcnn,
        crops: (0..photos).map(|i| face(i as u8 * 40, CROP_SIDE)).collect(),
        latent: None,
        identity: None,
    }
}

#[test]
fn a_generated_model_round_trips_with_its_latent_and_crop() {
    let data = tempfile::tempdir().unwrap();
    let lib = VirtualModelLibrary::open(data.path());
    assert!(lib.list().unwrap().models.is_empty());
    assert!(!lib.root().exists(), "listing creates nothing");

    let new = generated("Ava", 3);
    let made = lib.create(new.clone()).unwrap();
    assert_eq!(made.id.len(), 12);
    assert!(made.dir().starts_with(lib.root()));
    for file in ["model.json", "face.png", "crop.png", "latent.safetensors"] {
        assert!(made.dir().join(file).is_file(), "{file}");
    }

    let listing = lib.list().unwrap();
    assert!(listing.damaged.is_empty(), "{:?}", listing.damaged);
    assert_eq!(listing.models, vec![made.clone()]);
    let found = lib.find("ava").unwrap();
    assert_eq!(found, made);
    assert_eq!(lib.find(&made.id).unwrap(), made);
    assert_eq!(found.face_image().unwrap(), new.face);
    assert_eq!(found.aligned_crops().unwrap(), new.crops);
    assert_eq!(found.latent().unwrap(), new.latent);
    let Origin::Generated(g) = &found.origin else {
        panic!("generated")
    };
    assert_eq!(
        (g.seed, g.truncation, g.noise),
        (Some(3), 0.7, NoiseSpec::Seeded { seed: 3 })
    );
    assert_eq!(g.latent_file, "latent.safetensors");
    assert_eq!(found.origin.summary(), "generated, seed 3, ψ 0.70 (test weights)");

    // The JSON is the documented, versioned format.
    let json: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(made.dir().join("model.json")).unwrap()).unwrap();
    assert_eq!(json["format"], "facecast-virtual-model");
    assert_eq!(json["version"], 1);
    assert_eq!(json["origin"]["kind"], "generated");
    assert_eq!(json["origin"]["noise"]["kind"], "seeded");
    assert_eq!(json["origin"]["z_rng"], "mt19937-polar");
    assert_eq!(json["face"]["landmarks_from"], "ffhq-template");
    assert_eq!(json["crops"][0]["file"], "crop.png");
    assert!(json["identity"].is_null());
}

#[test]
fn an_imported_model_keeps_one_crop_per_photo_and_its_sources() {
    let data = tempfile::tempdir().unwrap();
    let lib = VirtualModelLibrary::open(data.path());
    let new = imported("Bea", 3);
    let made = lib.create(new.clone()).unwrap();
    assert_eq!(made.aligned_crops().unwrap(), new.crops);
    assert_eq!(made.latent().unwrap(), None);
    assert_eq!(
        made.crops
            .iter()
            .map(|c| (c.file.as_str(), c.source))
            .collect::<Vec<_>>(),
        [
            ("crop.png", Some(0)),
            ("crop-1.png", Some(1)),
            ("crop-2.png", Some(2))
        ]
    );
    assert_eq!(made.origin.summary(), "imported from 3 photos");
    assert!(!made.is_generated());
    // An imported model cannot carry a latent, and needs as many crops as photos.
    let mut bad = imported("Cy", 2);
    bad.crops.pop();
    assert!(
        lib.create(bad)
            .unwrap_err()
            .to_string()
            .contains("2 source photos but 1")
    );
    let mut bad = generated("Di", 1);
    bad.latent = None;
    assert!(lib.create(bad).is_err());
    let mut bad = generated("Di", 1);
    bad.crops = vec![face(1, 100)];
    assert!(lib.create(bad).unwrap_err().to_string().contains("100×100"));
    assert_eq!(
        lib.list().unwrap().models.len(),
        1,
        "refused models leave nothing"
    );
}

#[test]
fn names_are_unique_without_regard_to_case_and_any_script_works() {
    let data = tempfile::tempdir().unwrap();
    let lib = VirtualModelLibrary::open(data.path());
    let a = lib.create(generated("Åsa Öberg", 1)).unwrap();
    // The same name in another case, or decomposed (A + combining ring), is taken.
    for taken in [
        "åsa öberg",
        "ÅSA ÖBERG",
        "A\u{30a}sa O\u{308}berg",
        "  Åsa Öberg ",
    ] {
        let err = lib.create(generated(taken, 2)).unwrap_err();
        assert!(matches!(err, CastError::NameTaken { .. }), "{taken}: {err}");
    }
    let b = lib.create(generated("山田 花子", 2)).unwrap();
    assert_eq!(lib.find("山田 花子").unwrap().id, b.id);
    assert_eq!(lib.find("a\u{30a}sa öberg").unwrap().id, a.id);
    for bad in ["", "   ", "tab\there", "line\nbreak"] {
        assert!(matches!(
            lib.create(generated(bad, 3)).unwrap_err(),
            CastError::InvalidName { .. }
        ));
    }
    let err = lib.find("Nobody").unwrap_err().to_string();
    assert!(err.contains("Nobody") && err.contains("山田 花子"), "{err}");
    assert_eq!(name_key("ÅSA"), name_key("a\u{30a}sa"));
}

#[test]
fn rename_duplicate_delete_and_undelete() {
    let data = tempfile::tempdir().unwrap();
    let lib = VirtualModelLibrary::open(data.path());
    let ava = lib.create(generated("Ava", 3)).unwrap();
    let bea = lib.create(imported("Bea", 1)).unwrap();

    // Rename keeps the id and folder; another model's name (any case) is refused; the model's
    // own name in another case is fine.
    let renamed = lib.rename("ava", "Ava Summer").unwrap();
    assert_eq!(
        (renamed.id.as_str(), renamed.name.as_str()),
        (ava.id.as_str(), "Ava Summer")
    );
    assert!(matches!(
        lib.rename("Ava Summer", "bea").unwrap_err(),
        CastError::NameTaken { .. }
    ));
    assert_eq!(lib.rename("Ava Summer", "AVA SUMMER").unwrap().name, "AVA SUMMER");
    lib.rename(&ava.id, "Ava Summer").unwrap();

    let copy = lib.duplicate("Ava Summer", None).unwrap();
    assert_eq!(copy.name, "Ava Summer (copy)");
    assert_ne!(copy.id, ava.id);
    assert_eq!(
        copy.latent().unwrap(),
        lib.find(&ava.id).unwrap().latent().unwrap()
    );
    assert_eq!(lib.duplicate(&ava.id, None).unwrap().name, "Ava Summer (copy 2)");
    let named = lib.duplicate("bea", Some("Bea 2")).unwrap();
    assert_eq!(named.aligned_crops().unwrap(), bea.aligned_crops().unwrap());

    let names = |lib: &VirtualModelLibrary| -> Vec<String> {
        lib.list().unwrap().models.into_iter().map(|m| m.name).collect()
    };
    assert_eq!(
        names(&lib),
        // Sorted by name without regard to case (" " sorts before ")").
        [
            "Ava Summer",
            "Ava Summer (copy 2)",
            "Ava Summer (copy)",
            "Bea",
            "Bea 2"
        ]
    );

    let gone = lib.delete("Bea").unwrap();
    assert_eq!(gone.id, bea.id);
    assert!(!bea.dir().exists());
    assert!(matches!(lib.find("Bea").unwrap_err(), CastError::NotFound { .. }));
    assert!(
        lib.list().unwrap().damaged.is_empty(),
        "the deleted folder is not an entry"
    );
    let back = lib.undelete(&bea.id).unwrap();
    assert_eq!(back.name, "Bea");
    assert_eq!(
        lib.find("Bea").unwrap().aligned_crops().unwrap(),
        bea.aligned_crops().unwrap()
    );

    // A deleted model whose name was reused meanwhile cannot come back over it.
    lib.delete("Bea 2").unwrap();
    lib.create(imported("Bea 2", 1)).unwrap();
    assert!(matches!(
        lib.undelete(&named.id).unwrap_err(),
        CastError::NameTaken { .. }
    ));
}

#[test]
fn edited_versions_record_their_parent_and_edits() {
    let data = tempfile::tempdir().unwrap();
    let lib = VirtualModelLibrary::open(data.path());
    let ava = lib.create(generated("Ava", 3)).unwrap();
    let mut edited_latent = latent(10, 8, 0.5);
    edited_latent.s_conv_delta = Some(vec![0.25; 40]);
    let edit = EditRecord::new(
        "styleclip-global",
        "\"smiling\" strength 4.0",
        serde_json::json!({"prompt": "a smiling face", "alpha": 4.0, "beta": 0.15}),
    );
    let new = NewVirtualModel::edited(
        &ava,
        "Ava smiling",
        face(7, 64),
        ava.face.landmarks,
        LandmarkSource::FfhqTemplate,
        face(8, CROP_SIDE),
        edited_latent.clone(),
        edit.clone(),
    )
    .unwrap();
    let smiling = lib.create(new).unwrap();
    assert_eq!(smiling.parent.as_deref(), Some(ava.id.as_str()));
    assert_eq!(smiling.edits(), [edit.clone()]);
    assert_eq!(smiling.latent().unwrap(), Some(edited_latent));
    assert_eq!(smiling.generated().unwrap().seed, Some(3));

    // A second edit on the edited version accumulates, and lineage reaches both.
    let again = NewVirtualModel::edited(
        &smiling,
        "Ava smiling blond",
        face(9, 64),
        ava.face.landmarks,
        LandmarkSource::FfhqTemplate,
        face(10, CROP_SIDE),
        latent(10, 8, 0.7),
        EditRecord::new("styleclip-mapper", "blond hair", serde_json::Value::Null),
    )
    .unwrap();
    let blond = lib.create(again).unwrap();
    assert_eq!(blond.edits().len(), 2);
    let family: Vec<String> = lib
        .descendants(&ava.id)
        .unwrap()
        .into_iter()
        .map(|m| m.name)
        .collect();
    assert_eq!(family, ["Ava smiling", "Ava smiling blond"]);

    // Imported models cannot be edited; a parent must exist.
    let bea = lib.create(imported("Bea", 1)).unwrap();
    assert!(
        NewVirtualModel::edited(
            &bea,
            "x",
            face(1, 64),
            bea.face.landmarks,
            LandmarkSource::Mtcnn,
            face(1, CROP_SIDE),
            latent(10, 8, 0.0),
            edit.clone()
        )
        .is_err()
    );
    let mut orphan = generated("Orphan", 5);
    orphan.parent = Some("000000000000".into());
    assert!(
        lib.create(orphan)
            .unwrap_err()
            .to_string()
            .contains("not in the library")
    );
}

#[test]
fn the_identity_embedding_is_kept() {
    let data = tempfile::tempdir().unwrap();
    let lib = VirtualModelLibrary::open(data.path());
    lib.create(imported("Bea", 1)).unwrap();
    let embedding: Vec<f32> = (0..512).map(|i| ((i as f32) * 0.37).sin() / 16.0).collect();
    let identity = Identity {
        network: "arcface-ir-se50".into(),
        reduced: false,
        embedding: embedding.clone(),
    };
    lib.set_identity("Bea", identity).unwrap();
    let bea = lib.find("Bea").unwrap();
    assert_eq!(bea.identity_for("arcface-ir-se50"), Some(embedding.as_slice()));
    assert_eq!(bea.identity_for("other"), None);
    let bad = Identity {
        network: "arcface-ir-se50".into(),
        reduced: false,
        embedding: vec![f32::NAN],
    };
    assert!(lib.set_identity("Bea", bad).is_err());
}

#[test]
fn damaged_entries_are_reported_and_skipped_never_fatal() {
    let data = tempfile::tempdir().unwrap();
    let lib = VirtualModelLibrary::open(data.path());
    let good = lib.create(generated("Good", 1)).unwrap();
    let make = |name: &str| lib.create(generated(name, 2)).unwrap();

    let bad_json = make("Bad JSON");
    fs::write(bad_json.dir().join("model.json"), "{ this is not json").unwrap();
    let no_face = make("No face");
    fs::remove_file(no_face.face_path()).unwrap();
    let no_crop = make("No crop");
    fs::remove_file(&no_crop.crop_paths()[0]).unwrap();
    let no_latent = make("No latent");
    fs::remove_file(no_latent.dir().join("latent.safetensors")).unwrap();
    let future = make("Future");
    let path = future.dir().join("model.json");
    let text = fs::read_to_string(&path)
        .unwrap()
        .replace("\"version\": 1", "\"version\": 7");
    fs::write(&path, text).unwrap();
    let moved = make("Moved");
    fs::rename(moved.dir(), lib.root().join("somewhere-else")).unwrap();
    fs::create_dir(lib.root().join("empty-folder")).unwrap();
    fs::write(lib.root().join("stray.txt"), "not a model").unwrap();

    let listing = lib.list().unwrap();
    assert_eq!(listing.models, vec![good.clone()]);
    let reason = |id: &str| -> String {
        listing
            .damaged
            .iter()
            .find(|d| d.id == id)
            .map(|d| d.reason.clone())
            .unwrap_or_else(|| panic!("{id} is not reported: {:?}", listing.damaged))
    };
    assert!(reason(&bad_json.id).contains("not valid JSON"));
    assert!(reason(&no_face.id).contains("face.png is missing"));
    assert!(reason(&no_crop.id).contains("crop.png is missing"));
    assert!(reason(&no_latent.id).contains("latent.safetensors is missing"));
    let future_reason = reason(&future.id);
    assert!(
        future_reason.contains("version 7") && future_reason.contains("newer Facecast"),
        "{future_reason}"
    );
    assert!(reason("somewhere-else").contains("folder"));
    assert!(reason("empty-folder").contains("model.json cannot be read"));
    assert_eq!(listing.damaged.len(), 7);
    // Names are told when the JSON still had them; damaged entries are never modified.
    let d = listing.damaged.iter().find(|d| d.id == future.id).unwrap();
    assert_eq!(d.name.as_deref(), Some("Future"));
    assert!(fs::read_to_string(&path).unwrap().contains("\"version\": 7"));
    // Asking for a damaged model by name says why it cannot be used.
    let err = lib.find("future").unwrap_err().to_string();
    assert!(err.contains("newer Facecast"), "{err}");
    // The good one still works, and new ones can be added beside the damaged ones.
    assert_eq!(
        lib.find("good").unwrap().latent().unwrap(),
        good.latent().unwrap()
    );
    lib.create(generated("Another", 4)).unwrap();
    assert_eq!(lib.list().unwrap().models.len(), 2);
}

#[test]
fn a_damaged_latent_file_is_named_in_the_error() {
    let data = tempfile::tempdir().unwrap();
    let path = data.path().join("latent.safetensors");
    let l = latent(4, 3, 1.0);
    write_latent(&l, &path).unwrap();
    assert_eq!(read_latent(&path).unwrap(), l);
    fs::write(&path, b"garbage").unwrap();
    let err = read_latent(&path).unwrap_err().to_string();
    assert!(
        err.contains("latent.safetensors") && err.contains("safetensors"),
        "{err}"
    );
    assert!(Latent::new(vec![1.0; 5], 2, 3).is_err());
    assert!(Latent::new(vec![f32::INFINITY; 6], 2, 3).is_err());
}

#[test]
fn interrupted_writes_leave_no_entry() {
    let data = tempfile::tempdir().unwrap();
    let lib = VirtualModelLibrary::open(data.path());
    lib.create(generated("Ava", 3)).unwrap();
    // A staging folder of a write that never finished is neither a model nor a damaged entry.
    fs::create_dir_all(lib.root().join(".staging-abcdef012345")).unwrap();
    fs::write(lib.root().join(".staging-abcdef012345").join("face.png"), b"half").unwrap();
    let listing = lib.list().unwrap();
    assert_eq!(listing.models.len(), 1);
    assert!(listing.damaged.is_empty());
}
