// Rebuild when a migration is added (sqlx::migrate! only tracks files it already embedded).
fn main() {
    println!("cargo:rerun-if-changed=../migrations");
}
