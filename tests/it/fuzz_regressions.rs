//! Every input the fuzz targets ever found interesting (`fuzz/regressions/<target>/`, crashes
//! included once fixed) runs through the same property checks in `cargo test`.

use coderflow::fuzz_checks::TARGETS;

#[test]
fn every_regression_input_passes_its_target_check() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/regressions");
    for (target, check) in TARGETS {
        let dir = root.join(target);
        let mut inputs = 0;
        for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
            let path = entry.unwrap().path();
            let data = std::fs::read(&path).unwrap();
            let outcome = std::panic::catch_unwind(|| check(&data));
            assert!(
                outcome.is_ok(),
                "{target}: {} fails its check",
                path.display()
            );
            inputs += 1;
        }
        assert!(inputs > 0, "{target} has regression inputs");
    }
}
