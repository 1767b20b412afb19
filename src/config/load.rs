//! Loading: the TOML file, then `M365_POSTURE__SECTION__KEY` environment overrides, merged by
//! the `config` crate, then the structural walk, pure validation and the file checks.
//!
//! Environment overrides (config-rs lowercases the variable name, `__` separates levels):
//! - scalars of `[dns]`, `[scan]`, `[state]`, `[metrics]` and `[checks]`, such as
//!   `M365_POSTURE__SCAN__INTERVAL=1h`; numbers and booleans are parsed from the text;
//! - the lists `dns.servers`, `checks.extra_internal_domains`, `checks.exclude_users` and
//!   `checks.first_party_tenant_ids`, comma-separated (`M365_POSTURE__DNS__SERVERS=127.0.0.1:53,10.0.0.2`);
//! - not `[[tenants]]`, `[[sinks]]` or `[[suppressions]]`: arrays of tables come from the file
//!   only, and a variable aimed at them is an error;
//! - an empty variable counts as unset;
//! - a variable naming an unknown key is an error like an unknown key in the file (typo
//!   protection), reported with the variable's name.

use super::error::{ConfigError, ConfigProblem, Problems};
use super::{files, validate, walk, Config};
use serde_json::Value;
use std::path::Path;

/// Prefix of environment overrides (with its separator).
pub const ENV_PREFIX: &str = "M365_POSTURE__";
const ENV_LIST_KEYS: [&str; 4] = [
    "dns.servers",
    "checks.extra_internal_domains",
    "checks.exclude_users",
    "checks.first_party_tenant_ids",
];
const FILE_ONLY_SECTIONS: [&str; 3] = ["tenants", "sinks", "suppressions"];

/// Loads and validates the config file at `path` with overrides from this process's
/// environment, checking that every file it names can be read.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let env = std::env::vars_os().filter_map(|(name, value)| {
        Some((
            name.into_string().ok()?,
            value.to_string_lossy().into_owned(),
        ))
    });
    load_with_env(path, env)
}

/// Like [`load`], with the environment given explicitly (variables without the
/// `M365_POSTURE__` prefix are ignored).
pub fn load_with_env(
    path: &Path,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<Config, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|err| {
        ConfigError::whole_file(format!("cannot read config file {}: {err}", path.display()))
    })?;
    let overrides = EnvOverrides::new(env);
    let origin = path.display().to_string();
    let tree = merged_tree(&text, &origin, Some(&overrides))?;
    finish(&tree, &overrides, true)
}

/// Parses and validates TOML text alone: no environment, no file checks (for tests and
/// for validating the example config anywhere).
pub fn from_toml_str(text: &str) -> Result<Config, ConfigError> {
    let tree = merged_tree(text, "config", None)?;
    finish(&tree, &EnvOverrides::default(), false)
}

/// The `M365_POSTURE__` variables, split into the ones passed to config-rs and the rejected.
#[derive(Debug, Default)]
struct EnvOverrides {
    /// Variable name and value, for config-rs.
    accepted: Vec<(String, String)>,
    /// Key path each accepted variable sets, with the variable's name.
    key_paths: Vec<(String, String)>,
    /// Variables aimed at arrays of tables.
    rejected: Vec<ConfigProblem>,
}

impl EnvOverrides {
    fn new(env: impl IntoIterator<Item = (String, String)>) -> Self {
        let mut overrides = Self::default();
        for (name, value) in env {
            let Some(rest) = strip_prefix_ignore_case(&name, ENV_PREFIX) else {
                continue;
            };
            if value.is_empty() {
                continue;
            }
            let key_path = rest.to_lowercase().replace("__", ".");
            let section = key_path.split('.').next().unwrap_or_default();
            if FILE_ONLY_SECTIONS.contains(&section) {
                overrides.rejected.push(ConfigProblem::new(
                    section,
                    format!("cannot be set from the environment ({name}): [[{section}]] come from the config file"),
                ));
                continue;
            }
            overrides.key_paths.push((key_path, name.clone()));
            overrides.accepted.push((name, value));
        }
        overrides
    }

    /// Adds the variable's name to problems about keys it set.
    fn annotate(&self, problems: &mut [ConfigProblem]) {
        for problem in problems {
            let source = self
                .key_paths
                .iter()
                .find(|(key_path, _)| problem.is_at_or_below(key_path));
            if let Some((_, name)) = source {
                problem.message = format!("{} (from environment variable {name})", problem.message);
            }
        }
    }
}

fn strip_prefix_ignore_case<'a>(name: &'a str, prefix: &str) -> Option<&'a str> {
    let head = name.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| name.get(prefix.len()..))
        .flatten()
}

/// File and environment merged into one key tree.
fn merged_tree(text: &str, origin: &str, env: Option<&EnvOverrides>) -> Result<Value, ConfigError> {
    let file = config::File::from_str(text, config::FileFormat::Toml);
    let mut builder = config::Config::builder().add_source(file);
    if let Some(env) = env {
        let mut source = config::Environment::with_prefix(ENV_PREFIX.trim_end_matches('_'))
            .separator("__")
            .try_parsing(true)
            .ignore_empty(true)
            .list_separator(",");
        for key in ENV_LIST_KEYS {
            source = source.with_list_parse_key(key);
        }
        let vars: config::Map<String, String> = env.accepted.iter().cloned().collect();
        builder = builder.add_source(source.source(Some(vars)));
    }
    let whole_file = |err: config::ConfigError| {
        let message = format!("{origin}: {err}");
        ConfigError::whole_file(message.trim_end())
    };
    builder
        .build()
        .map_err(whole_file)?
        .try_deserialize::<Value>()
        .map_err(whole_file)
}

/// Problems sorted by section (in file order) and array index; stable within one entry.
fn report_order(key_path: &str) -> (usize, usize) {
    let section = key_path.split(['.', '[']).next().unwrap_or_default();
    let rank = walk::field_names::<super::raw::RawConfig>()
        .iter()
        .position(|name| *name == section)
        .map_or(0, |position| position + 1);
    let index = key_path
        .strip_prefix(section)
        .and_then(|rest| rest.strip_prefix('['))
        .and_then(|rest| rest.split(']').next())
        .and_then(|digits| digits.parse().ok())
        .unwrap_or(0);
    (rank, index)
}

fn finish(tree: &Value, env: &EnvOverrides, check_files: bool) -> Result<Config, ConfigError> {
    let mut structural = Problems::default();
    let raw = walk::raw_from_tree(tree, &mut structural);
    let structural = structural.into_vec();
    let validated = validate::validate(&raw);
    let mut problems = env.rejected.clone();
    problems.extend(structural.iter().cloned());
    if let Err(semantic) = &validated {
        // A value that could not be read is reported once, not again as "required".
        let new = semantic
            .iter()
            .filter(|s| !structural.iter().any(|p| s.is_at_or_below(&p.key_path)));
        problems.extend(new.cloned());
        if problems.is_empty() {
            problems.extend(semantic.iter().cloned());
        }
    }
    if check_files {
        problems.extend(files::check_files(&raw));
    }
    env.annotate(&mut problems);
    problems.sort_by_key(|problem| report_order(&problem.key_path));
    match validated {
        Ok(config) if problems.is_empty() => Ok(config),
        _ => Err(ConfigError { problems }),
    }
}
