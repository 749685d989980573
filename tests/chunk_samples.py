"""Source files in several languages, shared by the chunking tests."""

from __future__ import annotations

from tests.chunk_kit import src

PYTHON = src('''
    """Module docstring."""
    import os
    from typing import Any

    TIMEOUT = 5


    # Comment about the class.
    @dataclass
    class Session(Base):
        """A session."""

        retries: int = 3

        # Comment about request.
        @retry(3)
        def request(self, method: str) -> Any:
            def helper() -> int:
                return 1
            return helper()

        class Config:
            strict = True

            def load(self) -> None:
                pass

        timeout = property(lambda self: 5)

        def close(self) -> None:
            pass


    async def fetch(url: str) -> bytes:
        return b""


    if __name__ == "__main__":
        fetch("x")
''')


GO = src("""
    package server

    import "net/http"

    // Server serves requests.
    // It is safe for concurrent use.
    type Server struct {
        addr string
    }

    type (
        Handler interface{ Serve() }
        ID      int
    )

    // Start starts the server.
    func (s *Server) Start() error {
        return nil
    }

    func (c Cache[K, V]) Get(k K) V {
        var zero V
        return zero
    }

    func New(addr string) *Server {
        return &Server{addr: addr}
    }
""")


RUST = src("""
    use std::fmt;

    /// A point.
    #[derive(Debug, Clone)]
    pub struct Point<T> {
        x: T,
    }

    impl<T: fmt::Display> fmt::Display for Point<T> {
        /// Formats it.
        fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
            write!(f, "{}", self.x)
        }
    }

    pub trait Shape {
        fn area(&self) -> f64;
        fn name(&self) -> String {
            String::new()
        }
    }

    mod geometry {
        pub fn origin() -> i32 {
            0
        }
    }

    mod tests;

    fn main() {}
""")


C_SOURCE = src("""
    #include <stdio.h>

    /* Allocates a buffer. */
    static char *make_buffer(size_t n) {
        return malloc(n);
    }

    typedef struct {
        int x;
    } point_t;

    struct list {
        struct list *next;
    };

    int prototype(int);

    #ifdef DEBUG
    void debug_dump(void) {
    }
    #endif
""")


CPP = src("""
    namespace net {

    class Socket : public Base {
     public:
      Socket();
      int fd() const { return fd_; }

     private:
      int fd_;
    };

    template <typename T>
    T Socket::read() {
      return T();
    }

    std::string& Socket::name() { return name_; }

    }  // namespace net
""")


JAVASCRIPT = src("""
    import { api } from "./api.js";

    /**
     * Fetches a user.
     */
    export async function getUser(id) {
      return api.get(id);
    }

    export const formatName = (user) => {
      return user.first + " " + user.last;
    };

    const LIMIT = 10;

    export default class UserList extends Component {
      state = { users: [] };

      onClick = (event) => {
        this.select(event.target);
      };

      render() {
        return null;
      }
    }

    Widget.prototype.draw = function () {
      paint(this);
    };

    module.exports.helper = function () {
      return 1;
    };
""")


TYPESCRIPT = src("""
    export interface User {
      id: number;
      name(): string;
    }

    export type Id = string | number;

    enum Color {
      Red,
      Green,
    }

    namespace Util {
      export function clamp(x: number): number {
        return x;
      }
    }

    @Injectable()
    export class UserService {
      constructor(private http: Http) {}

      abstract find(id: Id): User;

      // Loads one user.
      @Get(":id")
      async load(id: Id): Promise<User> {
        return this.http.get(id);
      }
    }
""")


JAVA = src("""
    package app;

    import java.util.List;

    /** A repository. */
    @Repository
    public class UserRepo extends Base {
        private final List<User> users;

        /** Finds one. */
        @Override
        public User find(int id) {
            return users.get(id);
        }

        abstract void flush();

        UserRepo() {
            super();
        }

        static class Cache {
            void clear() {}
        }
    }
""")


MARKDOWN = src("""
    ---
    title: Guide
    tags: [cli, "search"]
    aliases: Handbook
    ---

    Welcome text.

    # Install

    Steps below.

    ## From source

    ```bash
    # not a heading
    make install
    ```

    ## From PyPI
    pip install it

    Usage
    =====

    ~~~
    ## still code
    ~~~

    Options
    -------
    Text.
""")
