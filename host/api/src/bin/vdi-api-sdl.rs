//! Prints the GraphQL schema's SDL (what `dashboard/schema.graphql` holds).

fn main() {
    print!("{}", vdi_api::sdl());
}
