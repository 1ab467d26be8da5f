"""PostgreSQL persistence shared by every service: tables, stores, unit of work."""
