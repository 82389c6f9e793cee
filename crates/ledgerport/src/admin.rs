//! Operator commands.

use ledgerport_store::Store;

#[derive(clap::Args)]
pub struct AdminArgs {
    /// Print JSON instead of text.
    #[arg(long, global = true)]
    pub json: bool,
}

pub async fn run(_store: &dyn Store, _args: AdminArgs) -> Result<(), String> {
    Err("admin commands are being written".into())
}
