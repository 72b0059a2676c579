package dev.hybridinference.localgpu.internal;

import java.io.IOException;
import java.io.InputStream;
import java.net.URL;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * Loads the engine's native library once, trying in order: the path in the system property {@value
 * #PATH_PROPERTY}, the library path ({@code System.loadLibrary}), then the copy bundled in the jar under
 * {@code native/<os>-<arch>/}. When all fail, the cause lists every attempt. Internal.
 */
public final class NativeLoader {
    /** A system property naming the library file to load instead of the bundled one. */
    public static final String PATH_PROPERTY = "hybridinference.native.path";

    /** Set to {@code true} to turn the native runtime off. */
    public static final String DISABLE_PROPERTY = "hybridinference.native.disable";

    private static final String NAME = "hybridinference_local";
    private static final Throwable CAUSE = load();

    private NativeLoader() {}

    /** Null when the library is loaded, else why not. */
    public static Throwable unavailabilityCause() {
        return CAUSE;
    }

    /** The folder name of this platform's library, such as {@code linux-x86_64}. */
    public static String platform() {
        String os = System.getProperty("os.name", "").toLowerCase(Locale.ROOT);
        String osName = os.startsWith("linux") ? "linux" : os.startsWith("mac") ? "darwin" : os.replace(' ', '_');
        String arch = System.getProperty("os.arch", "").toLowerCase(Locale.ROOT);
        if (arch.equals("amd64") || arch.equals("x86-64")) {
            arch = "x86_64";
        } else if (arch.equals("arm64")) {
            arch = "aarch64";
        }
        return osName + "-" + arch;
    }

    private static Throwable load() {
        if (Boolean.getBoolean(DISABLE_PROPERTY)) {
            return new UnsupportedOperationException("the native runtime is turned off by -D" + DISABLE_PROPERTY);
        }
        List<String> attempts = new ArrayList<>();
        String explicit = System.getProperty(PATH_PROPERTY);
        if (explicit != null && !explicit.isBlank()) {
            try {
                System.load(Paths.get(explicit).toAbsolutePath().toString());
                return null;
            } catch (Throwable t) {
                attempts.add("-D" + PATH_PROPERTY + "=" + explicit + ": " + t.getMessage());
            }
        }
        try {
            System.loadLibrary(NAME);
            return null;
        } catch (Throwable t) {
            attempts.add("System.loadLibrary(\"" + NAME + "\"): " + t.getMessage());
        }
        String resource = "/native/" + platform() + "/" + System.mapLibraryName(NAME);
        URL url = NativeLoader.class.getResource(resource);
        if (url == null) {
            attempts.add("bundled " + resource + ": not in the jar (this platform has no build, or the module was built"
                    + " with -Dnative.skip=true or without CMake and a C++ compiler)");
        } else {
            try {
                Path file;
                if (url.getProtocol().equals("file")) {
                    file = Paths.get(url.toURI());
                } else {
                    file = Files.createTempFile(NAME, System.mapLibraryName(""));
                    file.toFile().deleteOnExit();
                    try (InputStream in = url.openStream()) {
                        Files.copy(in, file, StandardCopyOption.REPLACE_EXISTING);
                    }
                }
                System.load(file.toAbsolutePath().toString());
                return null;
            } catch (IOException | java.net.URISyntaxException | UnsatisfiedLinkError | SecurityException e) {
                attempts.add("bundled " + resource + ": " + e.getMessage());
            }
        }
        return new UnsatisfiedLinkError(
                "the native runtime could not be loaded; tried: " + String.join("; ", attempts));
    }
}
