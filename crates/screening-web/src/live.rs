use leptos::prelude::*;

#[island]
pub fn Counter() -> impl IntoView {
    let (count, set_count) = signal(0);
    view! { <button on:click=move |_| set_count.update(|c| *c += 1)>{count}</button> }
}
