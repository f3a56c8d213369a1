//! What the benchmarks share: reading back the medians criterion measured in this run, so
//! that each bench can print its calls' ratios to the baselines of the same run.

use std::path::PathBuf;
use std::time::SystemTime;

/// Where criterion writes its estimates (its own rule: `CRITERION_HOME`, else the cargo
/// target directory).
pub fn criterion_home() -> PathBuf {
    std::env::var_os("CRITERION_HOME")
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("CARGO_TARGET_DIR").map(|d| PathBuf::from(d).join("criterion"))
        })
        .unwrap_or_else(|| PathBuf::from("target/criterion"))
}

/// The median (ns) of `group/function` if this run (since `since`) measured it.
pub fn median_of(group: &str, function: &str, since: SystemTime) -> Option<f64> {
    let path = criterion_home()
        .join(group)
        .join(function)
        .join("new")
        .join("estimates.json");
    let modified = std::fs::metadata(&path).ok()?.modified().ok()?;
    if modified < since {
        return None;
    }
    let text = std::fs::read_to_string(&path).ok()?;
    let json: serde_json::Value = serde_json::from_str(&text).ok()?;
    json["median"]["point_estimate"].as_f64()
}
