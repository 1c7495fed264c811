-- One database per service (each service owns its data); run once, on an empty volume.
CREATE DATABASE leads;
CREATE DATABASE pipeline;
CREATE DATABASE knowledge;
CREATE DATABASE integration;
CREATE DATABASE notify;
