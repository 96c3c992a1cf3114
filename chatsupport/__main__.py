from chatsupport.cli import main

raise SystemExit(main())
