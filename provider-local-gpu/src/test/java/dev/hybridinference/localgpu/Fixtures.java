package dev.hybridinference.localgpu;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;

/** The llama.cpp reference fixtures in the test resources, copied once to a temporary folder. */
public final class Fixtures {
    private static final Path DIR;

    static {
        try {
            DIR = Files.createTempDirectory("hybridinference-fixtures");
            DIR.toFile().deleteOnExit();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    private Fixtures() {}

    /** The fixture file {@code name}, as a file on disk. */
    public static synchronized Path file(String name) throws IOException {
        Path out = DIR.resolve(name);
        if (!Files.exists(out)) {
            try (InputStream in = Fixtures.class.getResourceAsStream("/fixtures/" + name)) {
                if (in == null) {
                    throw new IOException("fixture " + name + " is not in the test resources");
                }
                Files.copy(in, out);
            }
            out.toFile().deleteOnExit();
        }
        return out;
    }
}
