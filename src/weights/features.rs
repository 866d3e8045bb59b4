//! What each feature of the app needs installed: the one map behind `facecast weights install
//! --for`, the Weights window's sections and their *Install all for this feature*.

use super::manifest::{Feature, Manifest, ModelEntry};

/// One feature as the user sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FeatureGroup {
    /// The name `--for` takes.
    pub key: &'static str,
    pub title: &'static str,
    /// What installing it unlocks, in one sentence.
    pub unlocks: &'static str,
    /// The manifest tag of the networks shown in its section.
    pub feature: Feature,
    /// What *Install all* installs, in order: the networks the feature cannot run without. Other
    /// networks of the section (alternatives, optional prompts) are installed one by one.
    pub needs: &'static [&'static str],
}

/// Every feature, in the order the Weights window shows them.
pub const GROUPS: &[FeatureGroup] = &[
    FeatureGroup {
        key: "detect",
        title: "Detect",
        unlocks: "Finds the faces in every photo; the library and every step after it need it.",
        feature: Feature::Detect,
        needs: &["mtcnn"],
    },
    FeatureGroup {
        key: "swap",
        title: "Swap",
        unlocks: "Face swap: puts one face on the people of your photos.",
        feature: Feature::Swap,
        needs: &["mtcnn", "arcface-ir-se50", "faceshifter-aei"],
    },
    FeatureGroup {
        key: "restore",
        title: "Restore",
        unlocks: "Repairs blurred, noisy or low-resolution faces.",
        feature: Feature::Restore,
        needs: &["mtcnn", "gpen-bfr-512"],
    },
    FeatureGroup {
        key: "generate",
        title: "Generate",
        unlocks: "New faces of people who do not exist, for virtual models.",
        feature: Feature::Generate,
        needs: &["stylegan2-ffhq"],
    },
    FeatureGroup {
        key: "edit",
        title: "Text edits",
        unlocks: "Edits a face from a sentence (\"smiling\", \"purple hair\").",
        feature: Feature::TextEdit,
        needs: &[
            "stylegan2-ffhq",
            "clip-vit-b32",
            "clip-bpe-vocab",
            "styleclip-global-ffhq",
        ],
    },
    FeatureGroup {
        key: "makeup",
        title: "Makeup",
        unlocks: "Copies the makeup of a reference face onto yours.",
        feature: Feature::Makeup,
        needs: &["mtcnn", "beautygan"],
    },
    FeatureGroup {
        key: "classify",
        title: "Classifier",
        unlocks: "A face / no-face screen you train on your own labels.",
        feature: Feature::Classify,
        needs: &["mobilenetv2-imagenet-v2"],
    },
];

/// The names `--for` accepts: every group's key, and `all`.
pub fn keys() -> Vec<&'static str> {
    GROUPS.iter().map(|g| g.key).chain(["all"]).collect()
}

/// The groups a `--for` name stands for (`all`: every group).
pub fn groups_for(key: &str) -> Option<Vec<&'static FeatureGroup>> {
    if key == "all" {
        return Some(GROUPS.iter().collect());
    }
    GROUPS.iter().find(|g| g.key == key).map(|g| vec![g])
}

/// The networks the groups need, each once, in the groups' order.
pub fn needed_ids(groups: &[&FeatureGroup]) -> Vec<&'static str> {
    let mut ids: Vec<&'static str> = Vec::new();
    for id in groups.iter().flat_map(|g| g.needs.iter().copied()) {
        if !ids.contains(&id) {
            ids.push(id);
        }
    }
    ids
}

/// The manifest's networks of a group's section: what it needs first, then the rest of its tag.
pub fn section<'m>(manifest: &'m Manifest, group: &FeatureGroup) -> Vec<&'m ModelEntry> {
    let mut models: Vec<&ModelEntry> = group.needs.iter().filter_map(|id| manifest.get(id)).collect();
    for model in &manifest.models {
        if model.features.contains(&group.feature) && !models.iter().any(|m| m.id == model.id) {
            models.push(model);
        }
    }
    models
}

/// The networks among `ids` whose licence forbids commercial use or leaves it unclear: installing
/// them needs the user's explicit acceptance.
pub fn noncommercial<'m>(manifest: &'m Manifest, ids: &[&str]) -> Vec<&'m ModelEntry> {
    ids.iter()
        .filter_map(|id| manifest.get(id))
        .filter(|m| !m.commercial_use)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_needed_network_is_in_the_manifest_under_its_feature_or_is_the_detector() {
        let manifest = Manifest::embedded().expect("manifest");
        for group in GROUPS {
            for id in group.needs {
                let model = manifest
                    .get(id)
                    .unwrap_or_else(|| panic!("{}: {id} is not in the manifest", group.key));
                assert!(
                    model.features.contains(&group.feature) || model.features.contains(&Feature::Detect),
                    "{}: {id} is tagged {:?}",
                    group.key,
                    model.features
                );
            }
        }
    }

    #[test]
    fn swap_needs_the_detector_arcface_and_the_generator() {
        let swap = groups_for("swap").expect("swap");
        assert_eq!(needed_ids(&swap), ["mtcnn", "arcface-ir-se50", "faceshifter-aei"]);
        let all = needed_ids(&groups_for("all").expect("all"));
        assert_eq!(all.iter().filter(|id| **id == "mtcnn").count(), 1);
        assert!(all.contains(&"gpen-bfr-512") && all.contains(&"clip-bpe-vocab"));
        assert!(groups_for("teleport").is_none());
    }

    #[test]
    fn the_licence_gate_names_the_noncommercial_networks() {
        let manifest = Manifest::embedded().expect("manifest");
        let ids = needed_ids(&groups_for("swap").expect("swap"));
        let names: Vec<&str> = noncommercial(&manifest, &ids)
            .iter()
            .map(|m| m.id.as_str())
            .collect();
        assert_eq!(names, ["arcface-ir-se50", "faceshifter-aei"]);
        assert!(noncommercial(&manifest, &["mtcnn"]).is_empty());
    }

    #[test]
    fn a_section_lists_what_it_needs_first_then_the_alternatives() {
        let manifest = Manifest::embedded().expect("manifest");
        let edit = GROUPS.iter().find(|g| g.key == "edit").expect("edit");
        let ids: Vec<&str> = section(&manifest, edit).iter().map(|m| m.id.as_str()).collect();
        assert_eq!(ids[..4], edit.needs[..]);
        assert!(ids.contains(&"styleclip-mapper-afro"), "{ids:?}");
        let restore = GROUPS.iter().find(|g| g.key == "restore").expect("restore");
        let ids: Vec<&str> = section(&manifest, restore)
            .iter()
            .map(|m| m.id.as_str())
            .collect();
        assert_eq!(ids, ["mtcnn", "gpen-bfr-512", "gpen-bfr-256"]);
    }
}
