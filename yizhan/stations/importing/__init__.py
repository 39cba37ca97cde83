"""Import stations from CSV, XLSX, GeoJSON or JSON records into a registry document.

The importer reads a table (CSV in UTF-8 or GB18030, an XLSX sheet, GeoJSON Point
features, or a plain JSON list of objects), finds which column holds what (``--map
FIELD=COLUMN`` or auto-detection of common names in English, Chinese and Korean),
converts coordinates to WGS-84, maps amenity words and opening-hours phrasings to the
registry vocabularies, and returns every accepted station as a GeoJSON Feature together
with a report of every rejected row and every note (unknown amenity words, hours it
could not convert, ...).

Nothing is accepted silently wrong: a row whose coordinates are missing, not numbers,
out of range, swapped or far away from all the others, whose name is missing, or whose
id repeats an earlier one is rejected with the row number the user sees in the file
(header = row 1 in CSV/XLSX; the 0-based feature index in GeoJSON; the 1-based record
index in a JSON list of records).

Modules, in the order a source goes through them:

* ``spec`` -- :class:`ImportSpec` and the TOML mapping file (:func:`load_spec`).
* ``readers`` -- CSV, XLSX, GeoJSON and JSON-records files -> a table of rows.
* ``headers`` -- what a column name says (synonyms, coordinate qualifiers, CRS hints).
* ``columns`` -- which column feeds which field, and the coordinate system.
* ``values`` -- cell values: text, numbers, dates, flags, positions, ids.
* ``amenity_words`` -- source words -> amenities, and the amenities cell.
* ``hours_text`` -- one opening-hours text (Chinese phrasings) -> OSM syntax.
* ``hours_spec`` -- the ``[hours]`` options that build hours from several columns,
  with the converters in ``hours_columns`` (per-day and weekday/weekend columns),
  ``hours_periods`` (Catalan/Spanish period tables) and ``hours_result`` (what they
  return).
* ``rows`` -- one row -> a candidate feature or a rejection.
* ``run`` -- :func:`run_import`: the whole import, with the checks across rows.
* ``report`` -- rejected rows, notes and the :class:`ImportResult`.

Imports: this package may import ``yizhan.stations`` (models, validate, vocab, hours),
``yizhan.geo``, ``yizhan.errors`` and ``yizhan.settings`` -- nothing above
``stations/`` (no ``query/``, ``web/``, ``maps/``, ``routes/``, ``cli/``). Inside it, a
module imports only modules of an earlier step of this order, and none imports the
package itself: ``report``, ``headers``, ``hours_result``; ``values``,
``hours_columns``, ``hours_periods``, ``hours_text``; ``amenity_words``, ``hours_spec``;
``spec``; ``readers``; ``columns``; ``rows``; ``run``.

See ``docs/import.md`` for the mapping file format and examples.
"""

from __future__ import annotations

from yizhan.stations.importing.amenity_words import AMENITY_WORDS, amenity_for_word
from yizhan.stations.importing.hours_columns import (
    DayColumns,
    hours_from_day_columns,
    hours_from_mois_row,
    hours_from_weekday_weekend,
)
from yizhan.stations.importing.hours_periods import hours_from_period_table
from yizhan.stations.importing.hours_result import HoursResult, parse_clock
from yizhan.stations.importing.hours_spec import (
    HOURS_FORMATS,
    WEEKDAY_WEEKEND_COLUMNS,
    HoursSpec,
)
from yizhan.stations.importing.hours_text import convert_hours
from yizhan.stations.importing.report import NOTE_KINDS, REASONS, ImportResult, Note, Rejected
from yizhan.stations.importing.run import import_file, run_import
from yizhan.stations.importing.spec import FIELDS, GuessedWhen, ImportSpec, Rule, load_spec

__all__ = [
    "AMENITY_WORDS",
    "FIELDS",
    "HOURS_FORMATS",
    "NOTE_KINDS",
    "REASONS",
    "WEEKDAY_WEEKEND_COLUMNS",
    "DayColumns",
    "GuessedWhen",
    "HoursResult",
    "HoursSpec",
    "ImportResult",
    "ImportSpec",
    "Note",
    "Rejected",
    "Rule",
    "amenity_for_word",
    "convert_hours",
    "hours_from_day_columns",
    "hours_from_mois_row",
    "hours_from_period_table",
    "hours_from_weekday_weekend",
    "import_file",
    "load_spec",
    "parse_clock",
    "run_import",
]
