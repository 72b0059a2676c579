package dev.hybridinference.ledger.internal;

import java.io.BufferedReader;
import java.io.Closeable;
import java.io.FileOutputStream;
import java.io.IOException;
import java.io.RandomAccessFile;
import java.io.UncheckedIOException;
import java.nio.channels.FileChannel;
import java.nio.channels.FileLock;
import java.nio.channels.OverlappingFileLockException;
import java.nio.charset.StandardCharsets;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import java.util.concurrent.atomic.AtomicLong;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The local, append-only files that hold receipts the database could not take yet: one JSON line per
 * receipt ({@link SpendEntry#toJson()}), written with one {@code fsync} per batch.
 *
 * <p>New lines go to {@value #CURRENT}. To replay, that file is renamed to {@code replay-<n>.jsonl} (so
 * appends carry on into a fresh file while the replay reads a file nobody writes) and deleted once every
 * line of it is in the database. A replay that stops halfway leaves its file to be read again from the
 * start; the database ignores the receipts it has already, so nothing is written twice. Lines the database
 * refuses for what they hold, and lines that are not receipts (the torn end of a write the process did not
 * live to finish), go to {@value #REJECTED} for a person to look at; they are never replayed.
 *
 * <p>A directory belongs to one spend log at a time: it is locked ({@value #LOCK}) while a spool is open, in
 * this process and against others. Appends write with plain streams rather than channels, so that a caller
 * thread that happens to be interrupted cannot close the file under everyone else. Thread-safe. Internal.
 */
public final class Spool implements Closeable {
    /** The file appends go to. */
    public static final String CURRENT = "spool.jsonl";

    /** The file of lines that are never replayed. */
    public static final String REJECTED = "rejected.jsonl";

    /** The lock file. */
    public static final String LOCK = "spool.lock";

    private static final Pattern REPLAY = Pattern.compile("replay-(\\d{1,19})\\.jsonl");

    private final Path dir;
    private final FileChannel lockChannel;
    private final FileLock lock;
    private final Object appendLock = new Object();
    private final AtomicLong pending = new AtomicLong();
    private final AtomicLong rejected = new AtomicLong();
    private long nextReplay;
    private FileOutputStream current;
    private boolean closed;

    private Spool(Path dir, FileChannel lockChannel, FileLock lock) {
        this.dir = dir;
        this.lockChannel = lockChannel;
        this.lock = lock;
    }

    /**
     * Opens (and creates) a spool directory and counts the receipts left in it.
     *
     * @throws SettingException naming {@code spoolDirectory} when it cannot be created, read or locked, or
     *     another spend log holds it
     */
    public static Spool open(Path dir) {
        Path abs = dir.toAbsolutePath().normalize();
        FileChannel channel = null;
        try {
            Files.createDirectories(abs);
            channel = FileChannel.open(abs.resolve(LOCK), StandardOpenOption.CREATE, StandardOpenOption.WRITE);
            FileLock lock;
            try {
                lock = channel.tryLock();
            } catch (OverlappingFileLockException e) {
                lock = null;
            }
            if (lock == null) {
                throw new SettingException(
                        "spoolDirectory",
                        abs + " is in use by another spend log; give each spend log a directory of its own");
            }
            Spool spool = new Spool(abs, channel, lock);
            long left = 0;
            long highest = 0;
            for (Path p : spool.replayFiles()) {
                left += countLines(p);
                highest = Math.max(highest, replayNumber(p));
            }
            Path cur = abs.resolve(CURRENT);
            if (Files.exists(cur)) {
                left += countLines(cur);
            }
            spool.pending.set(left);
            spool.nextReplay = highest + 1;
            return spool;
        } catch (IOException | UncheckedIOException e) {
            closeQuietly(channel);
            throw new SettingException("spoolDirectory", "cannot use " + abs + " as the spool: " + e.getMessage());
        } catch (RuntimeException e) {
            closeQuietly(channel);
            throw e;
        }
    }

    /** The directory. */
    public Path directory() {
        return dir;
    }

    /** Receipts in the spool's files, waiting to be replayed. */
    public long pending() {
        return pending.get();
    }

    /** Receipts this spool put in {@value #REJECTED}. */
    public long rejected() {
        return rejected.get();
    }

    /**
     * Appends entries to {@value #CURRENT} and forces them to disk before returning.
     *
     * @throws IOException when they cannot be written; none of them then counts as spooled
     */
    public void append(Collection<SpendEntry> entries) throws IOException {
        if (entries.isEmpty()) {
            return;
        }
        StringBuilder text = new StringBuilder(entries.size() * 600);
        for (SpendEntry e : entries) {
            text.append(e.toJson()).append('\n');
        }
        byte[] bytes = text.toString().getBytes(StandardCharsets.UTF_8);
        synchronized (appendLock) {
            Path file = dir.resolve(CURRENT);
            if (closed) {
                // After close (a receipt that came late): append and let go of the file at once.
                try (FileOutputStream out = new FileOutputStream(file.toFile(), true)) {
                    out.write(bytes);
                    out.getFD().sync();
                }
                pending.addAndGet(entries.size());
                return;
            }
            if (current == null) {
                current = new FileOutputStream(file.toFile(), true);
                syncDirectory();
            }
            long before = Files.size(file);
            try {
                current.write(bytes);
                current.getFD().sync();
            } catch (IOException e) {
                // Cut off what part of the lines got out, so that the file holds whole lines only.
                closeQuietly(current);
                current = null;
                try (RandomAccessFile f = new RandomAccessFile(file.toFile(), "rw")) {
                    f.setLength(before);
                } catch (IOException suppressed) {
                    e.addSuppressed(suppressed);
                }
                throw e;
            }
            pending.addAndGet(entries.size());
        }
    }

    /**
     * The files to replay, oldest first: those left by earlier replays, and the current file, renamed so
     * that appends go on into a new one.
     */
    public List<Path> takeForReplay() throws IOException {
        synchronized (appendLock) {
            Path cur = dir.resolve(CURRENT);
            if (current != null) {
                current.close();
                current = null;
            }
            if (Files.exists(cur) && Files.size(cur) > 0) {
                Files.move(cur, dir.resolve("replay-" + nextReplay++ + ".jsonl"), StandardCopyOption.ATOMIC_MOVE);
                syncDirectory();
            }
            return replayFiles();
        }
    }

    /** Deletes a replay file all of whose lines are now in the database or rejected. */
    public void replayed(Path file, long lines) throws IOException {
        Files.deleteIfExists(file);
        syncDirectory();
        pending.addAndGet(-lines);
    }

    /** Appends a line that will not be replayed to {@value #REJECTED}, with why. */
    public void reject(String line, String reason) {
        String entry = "{\"rejected\":" + quote(reason) + ",\"line\":" + quote(line) + "}\n";
        synchronized (appendLock) {
            try (FileOutputStream out =
                    new FileOutputStream(dir.resolve(REJECTED).toFile(), true)) {
                out.write(entry.getBytes(StandardCharsets.UTF_8));
                out.getFD().sync();
            } catch (IOException e) {
                throw new UncheckedIOException("cannot write " + dir.resolve(REJECTED), e);
            }
            rejected.incrementAndGet();
        }
    }

    /** Reads a replay file's lines one at a time; the caller closes it. */
    public static BufferedReader reader(Path file) throws IOException {
        return Files.newBufferedReader(file, StandardCharsets.UTF_8);
    }

    /** Releases the directory; later appends still work (the next spend log there replays them). */
    @Override
    public void close() {
        synchronized (appendLock) {
            closeQuietly(current);
            current = null;
            closed = true;
        }
        try {
            lock.release();
        } catch (IOException e) {
            // the channel's close below releases it as well
        }
        closeQuietly(lockChannel);
    }

    private List<Path> replayFiles() throws IOException {
        List<Path> out = new ArrayList<>();
        try (DirectoryStream<Path> files = Files.newDirectoryStream(dir, "replay-*.jsonl")) {
            for (Path p : files) {
                if (REPLAY.matcher(p.getFileName().toString()).matches()) {
                    out.add(p);
                }
            }
        }
        out.sort((a, b) -> Long.compare(replayNumber(a), replayNumber(b)));
        return out;
    }

    private static long replayNumber(Path p) {
        Matcher m = REPLAY.matcher(p.getFileName().toString());
        if (!m.matches()) {
            return 0;
        }
        try {
            return Long.parseLong(m.group(1));
        } catch (NumberFormatException e) {
            return Long.MAX_VALUE;
        }
    }

    private static long countLines(Path file) throws IOException {
        long n = 0;
        try (BufferedReader r = reader(file)) {
            for (String line = r.readLine(); line != null; line = r.readLine()) {
                if (!line.isBlank()) {
                    n++;
                }
            }
        }
        return n;
    }

    /** Forces the directory's entries (a new or renamed file) to disk; not every platform can. */
    private void syncDirectory() {
        try (FileChannel d = FileChannel.open(dir, StandardOpenOption.READ)) {
            d.force(true);
        } catch (IOException | UnsupportedOperationException e) {
            // Windows cannot open a directory; its file system orders these itself
        }
    }

    private static String quote(String s) {
        StringBuilder sb = new StringBuilder(s.length() + 2).append('"');
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            if (c == '"' || c == '\\') {
                sb.append('\\').append(c);
            } else if (c < 0x20) {
                sb.append(String.format("\\u%04x", (int) c));
            } else {
                sb.append(c);
            }
        }
        return sb.append('"').toString();
    }

    private static void closeQuietly(Closeable c) {
        if (c == null) {
            return;
        }
        try {
            c.close();
        } catch (IOException e) {
            // nothing more to do with it
        }
    }
}
