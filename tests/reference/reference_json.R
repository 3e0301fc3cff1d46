# JSON writing shared by the reference generators (source()d by them; run them from the repository root).
# jsonlite caps numbers at 15 significant digits, so every number is written with "%.17g" (an exact
# double round trip) and spliced in verbatim; NA/NaN/Inf become null.

arr <- function(x) I(x)  # always a JSON array, even when length 1

prep_json <- function(x) {
  if (is.null(x)) return(NULL)
  if (is.factor(x)) x <- as.character(x)
  if (is.list(x) && !is.data.frame(x)) {
    nm <- names(x)
    out <- lapply(x, prep_json)
    names(out) <- nm  # keep explicit nulls named
    return(out)
  }
  if (is.numeric(x)) {
    as_array <- inherits(x, "AsIs") || length(x) != 1
    x <- as.numeric(unname(unclass(x)))
    s <- ifelse(is.finite(x), sprintf("%.17g", x), "null")
    if (as_array) s <- paste0("[", paste(s, collapse = ","), "]")
    return(structure(s, class = "json"))
  }
  if (is.logical(x) && all(is.na(x)) && length(x) == 1 && !inherits(x, "AsIs")) return(NA)
  x
}

write_json_file <- function(obj, path) {
  txt <- jsonlite::toJSON(prep_json(obj), auto_unbox = TRUE, json_verbatim = TRUE, na = "null",
                          null = "null", pretty = TRUE, digits = NA)
  writeLines(txt, path, useBytes = TRUE)
  invisible(path)
}

num <- function(x) arr(unname(as.numeric(x)))  # a numeric vector, names dropped, always a JSON array

# evaluate expr quietly; on error return list(error = msg); record warnings
safely <- function(expr, extract) {
  warns <- character(0)
  value <- withCallingHandlers(
    tryCatch(expr, error = function(e) structure(list(msg = conditionMessage(e)), class = "captured_error")),
    warning = function(w) { warns <<- c(warns, conditionMessage(w)); invokeRestart("muffleWarning") })
  if (inherits(value, "captured_error")) return(list(error = value$msg))
  out <- extract(value)
  out$warnings <- arr(unique(warns))
  out
}
