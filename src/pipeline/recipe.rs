//! The recipe: every setting of a run, saved as a versioned JSON file that the window edits, saves
//! and loads, and that `facecast batch --recipe FILE` runs.
//!
//! The format is documented for users in `docs/recipe.md`; this module is its definition. In short:
//!
//! ```json
//! {
//!   "facecast_recipe": 1,
//!   "virtual_model": "Ava",
//!   "faces": { "mode": "all_above", "min_score": 0.7 },
//!   "detect": { "max_side": 1600, "try_rotations": false },
//!   "swap": { "enabled": true, ... },
//!   "restore": { "enabled": false, ... },
//!   "makeup": { "enabled": false, ... },
//!   "export": { "format": "same", "quality": 92, "naming": "{stem}_vm.{ext}", "folder": null,
//!               "overwrite": false, "keep_icc": true, "metadata": "full" }
//! }
//! ```
//!
//! Missing settings take their defaults, so a recipe may be as short as `{"facecast_recipe": 1}`.
//! Every section is typed, the steps' settings included (each step's own settings type), so a
//! setting this build does not know is an error naming the file and the setting when the file is
//! parsed (a typo must not silently run with a default), in the window and the command line alike;
//! so is a recipe from a newer version of the format.
//!
//! Every export carries [`Recipe::hash`]: the sha256 of a canonical serialisation (keys sorted, no
//! white space) of the recipe without the two settings that only say *where* files go
//! (`export.folder`, `export.overwrite`), so the same look gives the same hash wherever it was
//! exported from.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::detect::photo::DetectSettings;
use super::makeup::MakeupSettings;
use super::restore::{RestoreMode, RestoreSettings};
use super::swap::SwapSettings;

/// The version of the recipe format this build writes and the newest it reads.
pub const RECIPE_VERSION: u32 = 1;

/// The key that marks a JSON file as a Facecast recipe and holds its format version.
pub const VERSION_KEY: &str = "facecast_recipe";

/// The file extension the window proposes when saving a recipe.
pub const RECIPE_EXTENSION: &str = "json";

/// Every setting of a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Recipe {
    /// Always [`RECIPE_VERSION`] when written by this build.
    pub facecast_recipe: u32,
    /// The virtual model whose face goes into the photos: a name or id in the virtual-model library,
    /// or the path of a face photo. `facecast batch --virtual` overrides it.
    pub virtual_model: Option<String>,
    /// Which faces of each photo are edited.
    pub faces: FaceChoice,
    /// How faces are found.
    pub detect: DetectOptions,
    /// Replacing the chosen faces with the virtual model's.
    pub swap: StepSection<SwapSettings>,
    /// Restoring the faces after the swap.
    pub restore: StepSection<RestoreSettings>,
    /// Makeup transfer from a reference face.
    pub makeup: StepSection<MakeupSettings>,
    /// How and where results are written.
    pub export: ExportSettings,
}

impl Default for Recipe {
    fn default() -> Self {
        Recipe {
            facecast_recipe: RECIPE_VERSION,
            virtual_model: None,
            faces: FaceChoice::default(),
            detect: DetectOptions::default(),
            swap: StepSection::enabled(),
            restore: StepSection::default(),
            makeup: StepSection::default(),
            export: ExportSettings::default(),
        }
    }
}

/// Which faces of a photo a run edits.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct FaceChoice {
    pub mode: FaceMode,
    /// Faces scoring below this are never edited (the screening rule: 0.70). A photo without such
    /// a face is skipped as "no face".
    pub min_score: f32,
}

impl Default for FaceChoice {
    fn default() -> Self {
        FaceChoice {
            mode: FaceMode::AllAbove,
            min_score: DetectSettings::default().min_score,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FaceMode {
    /// The faces chosen on the canvas in the window. A photo where none were chosen, and every photo
    /// of a command-line run, falls back to all faces scoring at least `min_score`.
    Selected,
    /// Every face scoring at least `min_score`.
    #[default]
    AllAbove,
    /// Only the largest face scoring at least `min_score`.
    Largest,
}

impl FaceMode {
    pub const ALL: [FaceMode; 3] = [FaceMode::Selected, FaceMode::AllAbove, FaceMode::Largest];

    pub fn label(self) -> &'static str {
        match self {
            FaceMode::Selected => "Faces chosen on the canvas",
            FaceMode::AllAbove => "All faces above the score",
            FaceMode::Largest => "The largest face",
        }
    }
}

/// How faces are found (the score lives in [`FaceChoice`]).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct DetectOptions {
    /// Photos larger than this are screened on a reduced copy (0: never).
    pub max_side: u32,
    /// Look at the photo turned 90° and 270° when nothing is found upright.
    pub try_rotations: bool,
}

impl Default for DetectOptions {
    fn default() -> Self {
        let d = DetectSettings::default();
        DetectOptions {
            max_side: d.max_side,
            try_rotations: d.try_rotations,
        }
    }
}

impl Recipe {
    /// The restore settings a run uses: an enabled step whose mode is left out (or "none") restores
    /// with GPEN, since enabling the step is asking for restoration; a disabled step restores
    /// nothing. The one place of this rule (the batch and the window's Restore section read it).
    pub fn restore_settings(&self) -> RestoreSettings {
        let mut settings = self.restore.settings.clone();
        if !self.restore.enabled {
            settings.mode = RestoreMode::None;
        } else if settings.mode == RestoreMode::None {
            settings.mode = RestoreMode::Gpen;
        }
        settings
    }

    /// The detector settings this recipe runs with.
    pub fn detect_settings(&self) -> DetectSettings {
        DetectSettings {
            max_side: self.detect.max_side,
            min_score: self.faces.min_score,
            try_rotations: self.detect.try_rotations,
        }
    }
}

/// One edit step of the recipe: whether it runs, and its settings, typed by the step
/// ([`SwapSettings`], [`RestoreSettings`], [`MakeupSettings`]). The settings sit beside `enabled`
/// in the file (`"swap": {"enabled": true, "engine": "classic"}`); one the step's type does not
/// know is refused by [`Recipe::parse`].
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct StepSection<S> {
    pub enabled: bool,
    #[serde(flatten)]
    pub settings: S,
}

impl<S: Default> StepSection<S> {
    pub fn enabled() -> StepSection<S> {
        StepSection {
            enabled: true,
            settings: S::default(),
        }
    }
}

/// How and where results are written.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ExportSettings {
    pub format: OutputFormat,
    /// JPEG quality, 1 to 100.
    pub quality: u8,
    /// The output file name: `{stem}` (the photo's name without extension), `{ext}` (the output
    /// format's extension; the photo's own spelling when the format is unchanged), `{index}` (the
    /// photo's position in the run, from 1, four digits), `{model}` (the virtual model). Any other
    /// text is kept; `/` and `\` are not allowed (no subfolders).
    pub naming: String,
    /// The output folder; `facecast batch --out` overrides it. Not part of the recipe's hash.
    pub folder: Option<PathBuf>,
    /// Replace existing files of the same name instead of numbering the new ones. Not part of the
    /// recipe's hash. Originals are never replaced either way.
    pub overwrite: bool,
    /// Embed the photo's colour profile (ICC) again, so colours keep their meaning.
    pub keep_icc: bool,
    pub metadata: MetadataLevel,
}

impl Default for ExportSettings {
    fn default() -> Self {
        ExportSettings {
            format: OutputFormat::Same,
            quality: 92,
            naming: "{stem}_vm.{ext}".to_string(),
            folder: None,
            overwrite: false,
            keep_icc: true,
            metadata: MetadataLevel::Full,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutputFormat {
    /// JPEG photos stay JPEG; everything else becomes PNG (lossless, keeps what the source had).
    #[default]
    Same,
    Jpeg,
    Png,
}

impl OutputFormat {
    pub const ALL: [OutputFormat; 3] = [OutputFormat::Same, OutputFormat::Jpeg, OutputFormat::Png];

    pub fn label(self) -> &'static str {
        match self {
            OutputFormat::Same => "Same as the photo (JPEG stays JPEG, others PNG)",
            OutputFormat::Jpeg => "JPEG",
            OutputFormat::Png => "PNG",
        }
    }
}

/// What each export records about itself. Both levels record the recipe's hash, the networks that
/// ran and whether the photo was edited by AI; `full` adds the recipe itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MetadataLevel {
    #[default]
    Full,
    Minimal,
}

/// Why a recipe could not be read or used. `source` names the file, or says "the recipe" for one
/// that was not read from a file.
#[derive(Debug, thiserror::Error)]
pub enum RecipeError {
    #[error("cannot read the recipe {source_name}: {error}")]
    Read {
        source_name: String,
        #[source]
        error: std::io::Error,
    },
    #[error("cannot save the recipe to {source_name}: {detail}")]
    Write { source_name: String, detail: String },
    #[error("the recipe {source_name} is not valid JSON (line {line}, column {column}): {detail}")]
    Syntax {
        source_name: String,
        line: usize,
        column: usize,
        detail: String,
    },
    #[error(
        "{source_name} is not a Facecast recipe: it has no \"{VERSION_KEY}\" version field at its top level"
    )]
    NotARecipe { source_name: String },
    #[error(
        "the recipe {source_name} has format version {found}, but this build of Facecast reads versions up to {RECIPE_VERSION}: update Facecast to use it"
    )]
    NewerVersion { source_name: String, found: String },
    #[error("the recipe {source_name} has settings this build does not know: {}", list(.fields))]
    UnknownFields {
        source_name: String,
        fields: Vec<UnknownField>,
    },
    #[error("the recipe {source_name} has a wrong value: {detail}")]
    Invalid { source_name: String, detail: String },
}

/// A setting a recipe names that this build does not know, with the ones it does know there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownField {
    /// Dotted path, e.g. `export.fromat`.
    pub path: String,
    /// The settings known at that level.
    pub known: Vec<String>,
}

fn list(fields: &[UnknownField]) -> String {
    fields
        .iter()
        .map(|f| {
            if f.known.is_empty() {
                format!("\"{}\"", f.path)
            } else {
                format!("\"{}\" (known there: {})", f.path, f.known.join(", "))
            }
        })
        .collect::<Vec<_>>()
        .join("; ")
}

impl Recipe {
    /// Reads and checks a recipe file.
    pub fn load(path: &Path) -> Result<Recipe, RecipeError> {
        let source_name = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|error| RecipeError::Read {
            source_name: source_name.clone(),
            error,
        })?;
        Recipe::parse(&text, &source_name)
    }

    /// Parses and checks recipe text; `source_name` is how errors name it.
    pub fn parse(text: &str, source_name: &str) -> Result<Recipe, RecipeError> {
        let name = || source_name.to_string();
        let value: Value = serde_json::from_str(text).map_err(|e| RecipeError::Syntax {
            source_name: name(),
            line: e.line(),
            column: e.column(),
            detail: strip_position(&e),
        })?;
        let Some(version) = value.as_object().and_then(|o| o.get(VERSION_KEY)) else {
            return Err(RecipeError::NotARecipe { source_name: name() });
        };
        match version.as_u64() {
            Some(v) if v >= 1 && v <= u64::from(RECIPE_VERSION) => {}
            Some(v) if v > u64::from(RECIPE_VERSION) => {
                return Err(RecipeError::NewerVersion {
                    source_name: name(),
                    found: v.to_string(),
                });
            }
            _ => {
                return Err(RecipeError::Invalid {
                    source_name: name(),
                    detail: format!("\"{VERSION_KEY}\" must be a whole number from 1, not {version}"),
                });
            }
        }
        // Parsing the text (not the value) keeps line and column in type errors.
        let recipe: Recipe = serde_json::from_str(text).map_err(|e| RecipeError::Invalid {
            source_name: name(),
            detail: format!(
                "{} (line {}, column {})",
                strip_position(&e),
                e.line(),
                e.column()
            ),
        })?;
        let known = serde_json::to_value(&recipe).map_err(|e| RecipeError::Invalid {
            source_name: name(),
            detail: e.to_string(),
        })?;
        let mut unknown = Vec::new();
        unknown_fields(&value, &known, "", &mut unknown);
        if !unknown.is_empty() {
            return Err(RecipeError::UnknownFields {
                source_name: name(),
                fields: unknown,
            });
        }
        recipe.validate(source_name)?;
        Ok(recipe)
    }

    /// Checks the values that the types alone do not constrain.
    pub fn validate(&self, source_name: &str) -> Result<(), RecipeError> {
        let invalid = |detail: String| RecipeError::Invalid {
            source_name: source_name.to_string(),
            detail,
        };
        if !(1..=100).contains(&self.export.quality) {
            return Err(invalid(format!(
                "export.quality is {}, but JPEG quality goes from 1 to 100",
                self.export.quality
            )));
        }
        if !(0.0..=1.0).contains(&self.faces.min_score) {
            return Err(invalid(format!(
                "faces.min_score is {}, but face scores go from 0 to 1",
                self.faces.min_score
            )));
        }
        check_naming(&self.export.naming).map_err(|e| invalid(format!("export.naming: {e}")))?;
        Ok(())
    }

    /// The recipe as saved: pretty JSON, settings in a fixed order, ending with a newline.
    pub fn to_json(&self) -> Result<String, serde_json::Error> {
        let mut text = serde_json::to_string_pretty(self)?;
        text.push('\n');
        Ok(text)
    }

    /// Saves atomically (temporary file in the same folder, flushed, renamed), so a crash never
    /// leaves half a recipe under the real name.
    pub fn save(&self, path: &Path) -> Result<(), RecipeError> {
        let write_error = |detail: String| RecipeError::Write {
            source_name: path.display().to_string(),
            detail,
        };
        let text = self.to_json().map_err(|e| write_error(e.to_string()))?;
        crate::io::atomic::write_atomic(path, text.as_bytes()).map_err(|e| write_error(e.to_string()))
    }

    /// The recipe as hashed and embedded in exports: without `export.folder` and `export.overwrite`.
    pub fn portable(&self) -> Recipe {
        let mut recipe = self.clone();
        recipe.export.folder = None;
        recipe.export.overwrite = false;
        recipe
    }

    /// Compact JSON with keys sorted at every level: the same settings always give the same text.
    pub fn canonical_json(&self) -> String {
        // Serialising plain data into a Value cannot fail: every map key is a string.
        let value = serde_json::to_value(self.portable()).unwrap_or(Value::Null);
        let mut out = String::new();
        write_canonical(&value, &mut out);
        out
    }

    /// sha256 (hex) of [`Recipe::canonical_json`].
    pub fn hash(&self) -> String {
        hex::encode(Sha256::digest(self.canonical_json().as_bytes()))
    }

    /// The first 12 hex digits of the hash, for labels.
    pub fn short_hash(&self) -> String {
        self.hash()[..12].to_string()
    }
}

/// serde_json appends " at line L column C" to its messages; the recipe errors say it their way.
fn strip_position(e: &serde_json::Error) -> String {
    let text = e.to_string();
    match text.rfind(" at line ") {
        Some(at) => text[..at].to_string(),
        None => text,
    }
}

/// Keys of `input` that did not survive a round trip through the typed recipe (`known`): serde
/// ignores them, so without this check a typo would silently run with the default. A key whose
/// value is empty (null, [], {}) is not reported: types may leave such values out when saving.
pub fn unknown_fields(input: &Value, known: &Value, path: &str, out: &mut Vec<UnknownField>) {
    match (input, known) {
        (Value::Object(input), Value::Object(known)) => {
            for (key, value) in input {
                let here = if path.is_empty() {
                    key.clone()
                } else {
                    format!("{path}.{key}")
                };
                match known.get(key) {
                    Some(k) => unknown_fields(value, k, &here, out),
                    None if is_empty(value) => {}
                    None => out.push(UnknownField {
                        path: here,
                        known: known.keys().cloned().collect(),
                    }),
                }
            }
        }
        (Value::Array(input), Value::Array(known)) => {
            for (i, (a, b)) in input.iter().zip(known).enumerate() {
                unknown_fields(a, b, &format!("{path}[{i}]"), out);
            }
        }
        _ => {}
    }
}

fn is_empty(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
        _ => false,
    }
}

fn write_canonical(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(key.clone()).to_string());
                out.push(':');
                write_canonical(&map[key], out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        other => {
            let _ = write!(out, "{other}");
        }
    }
}

/// The placeholders a naming template may use.
pub const NAMING_PLACEHOLDERS: &[&str] = &["stem", "ext", "index", "model"];

/// Why a naming template cannot name files.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NamingError {
    #[error("the name template is empty")]
    Empty,
    #[error("\"{0}\" contains a folder separator; the output folder is set separately")]
    FolderSeparator(String),
    #[error("the name template contains a NUL character")]
    Nul,
    #[error(
        "unknown placeholder {{{name}}} in \"{template}\" (known: {})",
        known_placeholders()
    )]
    UnknownPlaceholder { name: String, template: String },
    #[error("\"{0}\" has a '}}' without its '{{'")]
    UnopenedBrace(String),
    #[error("\"{0}\" has a '{{' without its '}}'")]
    UnclosedBrace(String),
    #[error("\"{0}\" has a '{{' inside a placeholder")]
    NestedBrace(String),
    #[error("the name template \"{0}\" gives an empty file name")]
    EmptyName(String),
    #[error("the name template \"{0}\" gives a name reserved for temporary files")]
    ReservedName(String),
}

fn known_placeholders() -> String {
    NAMING_PLACEHOLDERS
        .iter()
        .map(|p| format!("{{{p}}}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Checks a naming template: known placeholders, balanced braces, no folders, not empty.
pub fn check_naming(template: &str) -> Result<(), NamingError> {
    if template.trim().is_empty() {
        return Err(NamingError::Empty);
    }
    if template.contains('/') || template.contains('\\') {
        return Err(NamingError::FolderSeparator(template.to_string()));
    }
    if template.contains('\0') {
        return Err(NamingError::Nul);
    }
    for piece in parse_template(template)? {
        if let TemplatePiece::Placeholder(name) = piece
            && !NAMING_PLACEHOLDERS.contains(&name)
        {
            return Err(NamingError::UnknownPlaceholder {
                name: name.to_string(),
                template: template.to_string(),
            });
        }
    }
    Ok(())
}

/// A naming template cut into literal text and placeholders.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TemplatePiece<'a> {
    Text(&'a str),
    Placeholder(&'a str),
}

pub fn parse_template(template: &str) -> Result<Vec<TemplatePiece<'_>>, NamingError> {
    let mut pieces = Vec::new();
    let mut rest = template;
    while !rest.is_empty() {
        match rest.find(['{', '}']) {
            None => {
                pieces.push(TemplatePiece::Text(rest));
                break;
            }
            Some(at) if rest.as_bytes()[at] == b'}' => {
                return Err(NamingError::UnopenedBrace(template.to_string()));
            }
            Some(at) => {
                if at > 0 {
                    pieces.push(TemplatePiece::Text(&rest[..at]));
                }
                let after = &rest[at + 1..];
                let Some(end) = after.find('}') else {
                    return Err(NamingError::UnclosedBrace(template.to_string()));
                };
                let name = &after[..end];
                if name.contains('{') {
                    return Err(NamingError::NestedBrace(template.to_string()));
                }
                pieces.push(TemplatePiece::Placeholder(name));
                rest = &after[end + 1..];
            }
        }
    }
    Ok(pieces)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_recipe_round_trips_and_a_minimal_one_reads_as_the_default() {
        let recipe = Recipe::default();
        let text = recipe.to_json().unwrap();
        assert_eq!(Recipe::parse(&text, "r.json").unwrap(), recipe);
        assert_eq!(
            Recipe::parse(r#"{"facecast_recipe": 1}"#, "r.json").unwrap(),
            recipe
        );
    }

    #[test]
    fn unknown_settings_are_named_with_the_file() {
        let err = Recipe::parse(
            r#"{"facecast_recipe": 1, "export": {"fromat": "png"}, "colour": 3}"#,
            "shoot.json",
        )
        .unwrap_err();
        let text = err.to_string();
        assert!(text.contains("shoot.json"), "{text}");
        assert!(text.contains("\"export.fromat\""), "{text}");
        assert!(text.contains("(known there: folder, format, keep_icc"), "{text}");
        assert!(text.contains("\"colour\""), "{text}");
    }

    #[test]
    fn a_misspelt_step_setting_is_refused_with_the_file_and_the_setting() {
        let err = Recipe::parse(
            r#"{"facecast_recipe": 1, "swap": {"enabled": true, "engnie": "classic"}}"#,
            "look.json",
        )
        .unwrap_err();
        let text = err.to_string();
        assert!(matches!(err, RecipeError::UnknownFields { .. }), "{text}");
        assert!(
            text.contains("look.json") && text.contains("\"swap.engnie\""),
            "{text}"
        );
        assert!(text.contains("engine"), "the known settings are listed: {text}");
        let err = Recipe::parse(
            r#"{"facecast_recipe": 1, "swap": {"mask": {"feathr": 3}}}"#,
            "look.json",
        )
        .unwrap_err();
        assert!(err.to_string().contains("\"swap.mask.feathr\""), "{err}");
        let err = Recipe::parse(
            r#"{"facecast_recipe": 1, "restore": {"mode": "gpen", "blnd": 50}}"#,
            "look.json",
        )
        .unwrap_err();
        assert!(err.to_string().contains("\"restore.blnd\""), "{err}");
    }

    #[test]
    fn an_enabled_restore_step_without_a_mode_restores_with_gpen() {
        let recipe = Recipe::parse(r#"{"facecast_recipe": 1, "restore": {"enabled": true}}"#, "r").unwrap();
        assert_eq!(recipe.restore_settings().mode, RestoreMode::Gpen);
        let recipe = Recipe::parse(r#"{"facecast_recipe": 1, "restore": {"mode": "gpen"}}"#, "r").unwrap();
        assert_eq!(
            recipe.restore_settings().mode,
            RestoreMode::None,
            "a disabled step restores nothing"
        );
    }

    #[test]
    fn newer_versions_and_other_json_are_refused_clearly() {
        let err = Recipe::parse(r#"{"facecast_recipe": 7}"#, "new.json").unwrap_err();
        assert!(matches!(err, RecipeError::NewerVersion { .. }), "{err}");
        assert!(err.to_string().contains("new.json") && err.to_string().contains('7'));
        let err = Recipe::parse(r#"{"name": "x"}"#, "other.json").unwrap_err();
        assert!(matches!(err, RecipeError::NotARecipe { .. }), "{err}");
        let err = Recipe::parse(r#"{"facecast_recipe": 0}"#, "zero.json").unwrap_err();
        assert!(matches!(err, RecipeError::Invalid { .. }), "{err}");
        let err = Recipe::parse("{\"facecast_recipe\": 1,\n  \"faces\": ", "cut.json").unwrap_err();
        match err {
            RecipeError::Syntax { line, .. } => assert_eq!(line, 2),
            other => panic!("{other}"),
        }
    }

    #[test]
    fn wrong_values_say_where() {
        let err = Recipe::parse(
            "{\"facecast_recipe\": 1,\n \"export\": {\"quality\": \"high\"}}",
            "q.json",
        )
        .unwrap_err();
        let text = err.to_string();
        assert!(text.contains("q.json") && text.contains("line 2"), "{text}");
        let err = Recipe::parse(r#"{"facecast_recipe": 1, "export": {"quality": 0}}"#, "q.json").unwrap_err();
        assert!(err.to_string().contains("export.quality"), "{err}");
        let err = Recipe::parse(
            r#"{"facecast_recipe": 1, "export": {"naming": "{stem}_{size}.{ext}"}}"#,
            "n.json",
        )
        .unwrap_err();
        assert!(err.to_string().contains("{size}"), "{err}");
        let err = Recipe::parse(
            r#"{"facecast_recipe": 1, "export": {"naming": "out/{stem}.{ext}"}}"#,
            "n.json",
        )
        .unwrap_err();
        assert!(err.to_string().contains("folder separator"), "{err}");
    }

    #[test]
    fn the_hash_ignores_key_order_and_where_files_go_but_not_the_look() {
        let a = Recipe::parse(
            r#"{"facecast_recipe": 1, "export": {"quality": 80, "format": "jpeg"}}"#,
            "a",
        )
        .unwrap();
        let b = Recipe::parse(
            r#"{"export": {"format": "jpeg", "quality": 80, "folder": "/tmp/x", "overwrite": true}, "facecast_recipe": 1}"#,
            "b",
        )
        .unwrap();
        assert_eq!(a.hash(), b.hash());
        assert_eq!(a.hash().len(), 64);
        let mut c = a.clone();
        c.export.quality = 81;
        assert_ne!(a.hash(), c.hash());
        let mut d = a.clone();
        d.swap.settings.engine = crate::pipeline::swap::SwapEngine::Classic;
        assert_ne!(a.hash(), d.hash());
        // Canonical text: sorted keys, no spaces.
        let canonical = a.canonical_json();
        assert!(canonical.starts_with("{\"detect\":{"), "{canonical}");
        assert!(
            !canonical.contains(' ') || canonical.contains("{stem}"),
            "{canonical}"
        );
    }

    #[test]
    fn step_settings_survive_as_written() {
        let text =
            r#"{"facecast_recipe": 1, "makeup": {"enabled": true, "strength": 0.5, "reference": "soft"}}"#;
        let recipe = Recipe::parse(text, "m.json").unwrap();
        assert!(recipe.makeup.enabled);
        assert_eq!(recipe.makeup.settings.strength, 0.5);
        assert_eq!(recipe.makeup.settings.reference.as_deref(), Some("soft"));
        let again = Recipe::parse(&recipe.to_json().unwrap(), "m.json").unwrap();
        assert_eq!(again, recipe);
    }

    #[test]
    fn templates_are_parsed_strictly() {
        assert_eq!(
            parse_template("{stem}_vm.{ext}").unwrap(),
            vec![
                TemplatePiece::Placeholder("stem"),
                TemplatePiece::Text("_vm."),
                TemplatePiece::Placeholder("ext"),
            ]
        );
        assert_eq!(
            parse_template("{stem"),
            Err(NamingError::UnclosedBrace("{stem".into()))
        );
        assert_eq!(
            parse_template("stem}"),
            Err(NamingError::UnopenedBrace("stem}".into()))
        );
        assert_eq!(check_naming(" "), Err(NamingError::Empty));
        let unknown = check_naming("{size}.{ext}").unwrap_err();
        assert_eq!(
            unknown.to_string(),
            "unknown placeholder {size} in \"{size}.{ext}\" (known: {stem}, {ext}, {index}, {model})"
        );
        assert!(check_naming("{index}.{ext}").is_ok());
    }

    #[test]
    fn saving_is_atomic_and_loads_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("look.json");
        let recipe = Recipe {
            virtual_model: Some("Ava Ünal".into()),
            ..Recipe::default()
        };
        recipe.save(&path).unwrap();
        assert_eq!(Recipe::load(&path).unwrap(), recipe);
        let names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["look.json"]);
        let err = Recipe::load(&dir.path().join("missing.json")).unwrap_err();
        assert!(err.to_string().contains("missing.json"), "{err}");
    }
}
