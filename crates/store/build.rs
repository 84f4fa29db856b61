//! Rebuild when a migration folder is added: `embed_migrations!` tracks the files it
//! embeds, not the directory, so a new migration would otherwise be left out.
fn main() {
    println!("cargo:rerun-if-changed=../../migrations");
}
