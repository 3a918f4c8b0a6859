"""What the thesis published (Haruguchi 2019, section 3.1): the numbers the study judges.

Data only, no imports: the thesis table's cells, its losses in column order, and which of
our metrics measure what it measured.
"""

# Thesis section 3.1: (decoder activation, loss) -> (SSIM, optimizer).
THESIS_SSIM: dict[tuple[str, str], tuple[float, str]] = {
    ("relu", "mse"): (0.795, "adagrad"),
    ("relu", "i_div1"): (0.526, "adamax"),
    ("relu", "i_div2"): (0.751, "adadelta"),
    ("sigmoid", "mse"): (0.855, "adam"),
    ("sigmoid", "i_div1"): (0.632, "adamax"),
    ("sigmoid", "i_div2"): (0.880, "nadam"),
}
THESIS_LOSSES = ("mse", "i_div1", "i_div2")
# The only metric the thesis published: SSIM over its ten-image protocol, grey colour map.
THESIS_METRIC = "ssim_thesis"
# The metrics a figure may mark the published value on: the protocol under either colormap.
PUBLISHED_COMPARABLE = ("ssim_thesis", "ssim_thesis_viridis")
