package dev.hybridinference.localgpu;

import dev.hybridinference.localgpu.internal.GgufWriter;
import dev.hybridinference.localgpu.internal.RandomModels;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Objects;

/**
 * A small GGUF model with <b>random weights</b>, for demos, examples and tests that need the local runtime
 * but no downloaded model. Its answers are fluent-looking nonsense: it exercises the runtime (loading,
 * tokenizing, the forward pass, sampling, streaming, deadlines) and the SDK around it, not language
 * quality.
 *
 * <p>The model is a Llama-family network (384 wide, 4 layers, 6 heads of which 2 key/value heads, Q8_0
 * weights, a 4096-token context, a 300-entry byte-level vocabulary with a ChatML template), about 7 MB on
 * disk. The same seed always writes the same bytes.
 */
public final class DemoModels {
    /** The file name {@link #writeRandomModel(Path)} gives the model inside a directory. */
    public static final String RANDOM_MODEL_FILE = "random-demo-model.gguf";

    /** The model name the file's metadata carries, which the local provider reports. */
    public static final String RANDOM_MODEL_NAME = "random-llama-384x4";

    private static final RandomModels.Shape SHAPE =
            new RandomModels.Shape("llama", 384, 4, 6, 2, 1024, 4096, 300, true);
    private static final long SEED = 20261128L;

    private DemoModels() {}

    /**
     * Writes the random-weight demo model.
     *
     * @param target a file to write, or an existing directory to write {@value #RANDOM_MODEL_FILE} into; an
     *     existing file of that name is replaced
     * @return the model file
     * @throws UncheckedIOException if the file cannot be written
     */
    public static Path writeRandomModel(Path target) {
        Objects.requireNonNull(target, "target");
        Path file = Files.isDirectory(target) ? target.resolve(RANDOM_MODEL_FILE) : target;
        try {
            Path parent = file.toAbsolutePath().getParent();
            if (parent != null) {
                Files.createDirectories(parent);
            }
            RandomModels.write(file, SHAPE, GgufWriter.Q8_0, SEED);
            return file;
        } catch (IOException e) {
            throw new UncheckedIOException("could not write the demo model to " + file + ": " + e.getMessage(), e);
        }
    }
}
