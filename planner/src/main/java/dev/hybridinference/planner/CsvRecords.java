package dev.hybridinference.planner;

import java.io.IOException;
import java.io.Reader;
import java.util.ArrayList;
import java.util.List;

/**
 * Reads CSV records (RFC 4180: cells separated by commas, a cell in double quotes may hold commas, quotes
 * written twice, and line breaks) one at a time, counting lines so that errors can name them. Empty lines
 * are skipped. A record longer than a limit is refused before it is held whole, so a file without line
 * breaks cannot fill the memory. Not thread-safe.
 */
final class CsvRecords {
    private final Reader in;
    private final String source;
    private final int maxRecordChars;
    private final char[] buffer = new char[8192];
    private int position;
    private int limit;

    private final List<String> cells = new ArrayList<>();
    private final StringBuilder cell = new StringBuilder();
    private String[] columnNames = new String[0];
    private int line = 1;
    private int recordLine;

    CsvRecords(Reader in, String source, int maxRecordChars) {
        this.in = in;
        this.source = source;
        this.maxRecordChars = maxRecordChars;
    }

    /** Names the columns in later errors, by position. */
    void columnNames(List<String> names) {
        this.columnNames = names.toArray(new String[0]);
    }

    /** The line on which the record last read starts (1 for the first line). */
    int recordLine() {
        return recordLine;
    }

    /**
     * The cells of the next record, or null at the end of the input. The list is reused by the next call.
     *
     * @throws IllegalArgumentException for a record over the limit, a quote not closed, or text after a
     *     closing quote
     */
    List<String> next() throws IOException {
        cells.clear();
        cell.setLength(0);
        int c;
        // Skip empty lines between records.
        while (true) {
            c = read();
            if (c == -1) {
                return null;
            }
            if (c == '\n') {
                line++;
            } else if (c == '\r') {
                skipLineFeed();
                line++;
            } else {
                break;
            }
        }
        recordLine = line;
        int length = 0;
        boolean quoted = false;
        boolean afterQuote = false;
        while (true) {
            if (c == -1) {
                if (quoted) {
                    throw error(cells.size(), "a quoted cell is not closed before the end of the input");
                }
                cells.add(cell.toString());
                return cells;
            }
            if (++length > maxRecordChars) {
                throw error(-1, "longer than " + maxRecordChars + " characters; is this a CSV file?");
            }
            if (quoted) {
                if (c == '"') {
                    if (peek() == '"') {
                        position++;
                        cell.append('"');
                    } else {
                        quoted = false;
                        afterQuote = true;
                    }
                } else {
                    if (c == '\n' || (c == '\r' && peek() != '\n')) {
                        line++;
                    }
                    cell.append((char) c);
                }
            } else if (c == ',') {
                cells.add(cell.toString());
                cell.setLength(0);
                afterQuote = false;
            } else if (c == '\n' || c == '\r') {
                if (c == '\r') {
                    skipLineFeed();
                }
                line++;
                cells.add(cell.toString());
                return cells;
            } else if (afterQuote) {
                throw error(cells.size(), "expected a comma or the end of the line after a quoted cell");
            } else if (c == '"' && cell.length() == 0) {
                quoted = true;
            } else {
                cell.append((char) c);
            }
            c = read();
        }
    }

    /** An error naming the source, the current record's line and, when known, the column. */
    IllegalArgumentException error(int column, String what) {
        StringBuilder sb = new StringBuilder(source).append(" line ").append(recordLine);
        if (column >= 0) {
            sb.append(", column ")
                    .append(column < columnNames.length ? columnNames[column] : String.valueOf(column + 1));
        }
        return new IllegalArgumentException(sb.append(": ").append(what).toString());
    }

    private void skipLineFeed() throws IOException {
        if (peek() == '\n') {
            position++;
        }
    }

    private int read() throws IOException {
        if (position == limit && !fill()) {
            return -1;
        }
        return buffer[position++];
    }

    private int peek() throws IOException {
        if (position == limit && !fill()) {
            return -1;
        }
        return buffer[position];
    }

    private boolean fill() throws IOException {
        int n;
        do {
            n = in.read(buffer, 0, buffer.length);
        } while (n == 0);
        if (n < 0) {
            return false;
        }
        position = 0;
        limit = n;
        return true;
    }
}
