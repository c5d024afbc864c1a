"""Results: readers of finished runs, benches and sweeps, and their statistics (paired differences,
intervals, the noise floor and the minimum detectable effect, early predictors) and tables.

The figures, the report and the widgets read results through this package; it never imports the
orchestrators (:mod:`cmkd_lab.experiments`) that made them.
"""
from .grid import cell_dir, cell_id, grid_axes
from .readers import (bench_comparisons, bench_controls, bench_records, compact_sweep, current_bench, is_current_bench,
                      load_bench, load_sweep, made_by_this_code, provenance_note)
from .stats import (fieller_interval, headroom_recovered, minimum_detectable_effect, paired_difference, seeds_needed,
                    spearman)
from .summary import (CEILING, CONTROLS, aa_name, accuracy_table, control_table, designated_ceiling, early_diagnostics,
                      is_aa, is_ceiling, noise_floor, paired_summary, predictor_table, run_record)
from .tables import bench_csv, csv_text, format_bench_markdown, format_control_markdown, format_sweep_markdown

__all__ = ["cell_dir", "cell_id", "grid_axes", "compact_sweep", "load_bench", "load_sweep", "bench_comparisons",
           "bench_controls", "bench_records", "is_current_bench", "current_bench", "made_by_this_code",
           "provenance_note",
           "minimum_detectable_effect", "paired_difference", "seeds_needed", "spearman", "aa_name",
           "early_diagnostics", "is_aa", "noise_floor", "paired_summary", "predictor_table", "run_record",
           "csv_text", "format_bench_markdown", "format_sweep_markdown", "CONTROLS", "control_table",
           "format_control_markdown", "fieller_interval", "headroom_recovered", "CEILING", "accuracy_table",
           "designated_ceiling", "is_ceiling", "bench_csv"]
